"""Offline: which reward-net input lets a small MLP learn Ant's control cost from a run's labels.

``.venv/bin/python results/falls/ablation-ant/ant_inputs.py RUN_DIR [VARIANT ...]`` trains one
Bradley-Terry MLP (misclick eps 0.1, 64x64 leaky ReLU, Adam 1e-3, 60 epochs, inputs standardised)
per variant on 80% of the run's labels and reports: accuracy on the other 20% of the labels,
accuracy in ordering 3,000 random pairs of the run's clips by their true return, and the weights
of a per-step regression of the learned reward on forward velocity (obs[13]) and control cost
(-0.5 |a|^2), scaled so the larger is 1 (the true reward weighs them about 1 and 1).

Variants: obs_act (the preset's net), act_sq (obs, action and the action squared), additive
(an obs net plus an action net), obs_only, act_only, obs27_act (the first 27 obs dims only).
"""
import sys

import numpy as np
import torch

from prefrl.reward.loss import misclick_bt_loss
from prefrl.store import LabelStore

torch.set_num_threads(1)
run, variants = sys.argv[1], sys.argv[2:] or ["obs_act", "act_sq", "additive"]
st = LabelStore(f"{run}/labels.sqlite", create=False)
labs = [lab for lab in st.labels(include_skips=False) if lab.mu is not None]
hs = sorted({h for lab in labs for h in (lab.left, lab.right)})
clips = {c.hash: c for c in st.get_clips(hs, render_state=False)}
labs = [lab for lab in labs if lab.left in clips and lab.right in clips]
O = np.stack([clips[h].obs for h in hs]).astype(np.float32)
A = np.stack([clips[h].acts for h in hs]).astype(np.float32)
R = np.stack([clips[h].true_rews for h in hs]).sum(1)
idx = {h: i for i, h in enumerate(hs)}
L = np.array([idx[lab.left] for lab in labs])
Rt = np.array([idx[lab.right] for lab in labs])
mu = np.array([lab.mu for lab in labs], np.float32)
print(f"{run}: {len(labs)} labels, {len(hs)} clips, obs {O.shape}, acts {A.shape}")
rng = np.random.default_rng(0)
perm = rng.permutation(len(labs))
te, tr = perm[: len(labs) // 5], perm[len(labs) // 5:]
pairs = rng.integers(0, len(hs), (3000, 2))
keep = mu[te] != 0.5
print("true return: held-out label acc %.3f"
      % (((R[Rt[te]] - R[L[te]])[keep] > 0) == (mu[te][keep] > 0.5)).mean())


def inputs(variant):
    return {"obs_only": O, "act_only": A, "act_sq": np.concatenate([O, A, A ** 2], -1),
            "obs27_act": np.concatenate([O[..., :27], A], -1)}.get(
        variant, np.concatenate([O, A], -1))


def mlp(d, hidden=64):
    return torch.nn.Sequential(torch.nn.Linear(d, hidden), torch.nn.LeakyReLU(0.01),
                               torch.nn.Linear(hidden, hidden), torch.nn.LeakyReLU(0.01),
                               torch.nn.Linear(hidden, 1))


class Additive(torch.nn.Module):
    def __init__(self, d_obs, d):
        super().__init__()
        self.d_obs, self.f_obs, self.f_act = d_obs, mlp(d_obs), mlp(d - d_obs)

    def forward(self, z):
        return self.f_obs(z[:, : self.d_obs]) + self.f_act(z[:, self.d_obs:])


def fit(variant, epochs=60, seed=0):
    torch.manual_seed(seed)
    x = inputs(variant)
    n, T, d = x.shape
    flat = x.reshape(-1, d)
    X = torch.tensor((x - flat.mean(0)) / np.maximum(flat.std(0), 1e-3), dtype=torch.float32)
    net = Additive(O.shape[-1], d) if variant == "additive" else mlp(d)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    mut = torch.tensor(mu)
    for _ in range(epochs):
        for b in np.array_split(rng.permutation(tr), max(1, len(tr) // 64)):
            used = np.unique(np.r_[L[b], Rt[b]])
            pos = {v: i for i, v in enumerate(used)}
            ret = net(X[used].reshape(-1, d)).reshape(-1, T).sum(1)
            li = torch.tensor([pos[v] for v in L[b]])
            ri = torch.tensor([pos[v] for v in Rt[b]])
            loss = misclick_bt_loss(ret[li], ret[ri], mut[b])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        per_step = net(X.reshape(-1, d)).reshape(n, T).numpy()
    cr = per_step.sum(1)
    acc_lab = (((cr[Rt[te]] - cr[L[te]])[keep] > 0) == (mu[te][keep] > 0.5)).mean()
    acc_true = ((cr[pairs[:, 1]] > cr[pairs[:, 0]]) == (R[pairs[:, 1]] > R[pairs[:, 0]])).mean()
    r = per_step.reshape(-1)
    fwd, ctrl = O[:, :, 13].reshape(-1), -0.5 * (A ** 2).sum(-1).reshape(-1)
    X2 = np.stack([fwd, ctrl, np.ones_like(fwd)], 1)
    coef, *_ = np.linalg.lstsq(X2, r, rcond=None)
    r2 = 1 - ((r - X2 @ coef) ** 2).sum() / ((r - r.mean()) ** 2).sum()
    top = max(abs(coef[0]), abs(coef[1]))
    print(f"{variant:9s} seed {seed}: held-out label acc {acc_lab:.3f}, true-order acc "
          f"{acc_true:.3f}, weights fwd {coef[0] / top:.2f} ctrl {coef[1] / top:.2f}, "
          f"R^2 {r2:.2f}", flush=True)


for v in variants:
    for s in (0, 1):
        fit(v, seed=s)
