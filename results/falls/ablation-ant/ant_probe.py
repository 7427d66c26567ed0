"""What an Ant run's learned reward pays for, over its labelled clips.

``.venv/bin/python results/falls/ablation-ant/ant_probe.py RUN_DIR MODEL_DIR`` (MODEL_DIR from
``prefrl reward export RUN_DIR --out MODEL_DIR``). Per step: regress the learned and the true
reward on Ant-v5's two main terms, forward velocity (obs[13], qvel[0]) and control cost
(-0.5 |a|^2); compare the reward with the action zeroed. Per clip: the spread of each term's
sum, and the learned clip return's correlation with each.
"""
import sys
import numpy as np
from prefrl.store import LabelStore
from prefrl.reward.model import load_reward
run, model_dir = sys.argv[1], sys.argv[2]
m = load_reward(model_dir, device="cpu")
st = LabelStore(f"{run}/labels.sqlite", create=False)
clips = st.get_clips(st.clip_hashes(), render_state=False)
obs = np.concatenate([c.obs for c in clips]); acts = np.concatenate([c.acts for c in clips])
true = np.concatenate([c.true_rews for c in clips])
r = m(obs, acts); r0 = m(obs, np.zeros_like(acts))
fwd, ctrl = obs[:, 13], -0.5 * (acts ** 2).sum(1)
X = np.stack([fwd, ctrl, np.ones_like(fwd)], 1)
for name, y in (("learned", r), ("true", true)):
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    pred = X @ coef; r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean()) ** 2).sum()
    print(f"{name}: {len(y)} steps, coef fwd {coef[0]:.3f} ctrl {coef[1]:.3f}, R^2 {r2:.2f}")
print("corr(learned, true) per step %.2f" % np.corrcoef(r, true)[0, 1])
print("corr(learned, fwd) %.2f, corr(learned, ctrl) %.2f" % (np.corrcoef(r, fwd)[0, 1], np.corrcoef(r, ctrl)[0, 1]))
print("mean learned with the action / zeroed: %.3f / %.3f (std of learned %.3f)" % (r.mean(), r0.mean(), r.std()))
print("true reward std %.3f, of which fwd std %.3f, ctrl std %.3f" % (true.std(), fwd.std(), ctrl.std()))
# clip level: what decides the teacher's answers (the per-step arrays, summed per clip)
T = clips[0].obs.shape[0]
assert all(len(c.obs) == T for c in clips)
cf, cc, ct, rl = (x.reshape(len(clips), T).sum(1) for x in (fwd, ctrl, true, r))
print(f"clip sums over {T} steps: true std {ct.std():.2f}, fwd std {cf.std():.2f}, "
      f"ctrl std {cc.std():.2f}, ctrl mean {cc.mean():.1f}")
print("clip-level corr(learned, fwd) %.2f, corr(learned, ctrl) %.2f, corr(learned,true) %.2f" % (np.corrcoef(rl, cf)[0,1], np.corrcoef(rl, cc)[0,1], np.corrcoef(rl, ct)[0,1]))
# pair level: the differences the teacher actually judged
by_hash = {c.hash: c for c in clips}
dfw, dct, agree_f, agree_c = [], [], [], []
for lab in st.labels(include_skips=False):
    a, b = by_hash.get(lab.left), by_hash.get(lab.right)
    if a is None or b is None or lab.mu is None or lab.mu == 0.5:
        continue
    f = b.obs[:, 13].sum() - a.obs[:, 13].sum()
    c = -0.5 * ((b.acts ** 2).sum() - (a.acts ** 2).sum())
    dfw.append(f); dct.append(c)
    agree_f.append((f > 0) == (lab.mu > 0.5)); agree_c.append((c > 0) == (lab.mu > 0.5))
print(f"labelled pairs (non-equal): {len(dfw)}; std of the difference: fwd {np.std(dfw):.2f}, "
      f"ctrl {np.std(dct):.2f}; answers agreeing with the fwd sign {np.mean(agree_f):.2f}, "
      f"with the ctrl sign {np.mean(agree_c):.2f}")
