"""Offline: how the 'recent' vs 'labelled' standardisation would scale a run's final reward.

Usage: python normscale.py RUN_DIR   (a finished SAC cell: checkpoint/, labels.sqlite)
With the final ensemble fixed, standardise on (a) the 10k newest steps of the replay buffer at
several points of the run ('recent', as the learner does), (b) those plus as many steps of the
labelled clips ('labelled'). Prints per-member mean std-scale factors.
"""
import sys, torch, numpy as np
from pathlib import Path
from prefrl.reward.offline import export_run_model
from prefrl.store import LabelStore
torch.set_num_threads(1)
run = Path(sys.argv[1]); ck = run / "checkpoint"
ens = export_run_model(run).ensemble  # the checkpoint's (final) ensemble
z = np.load(ck / "replay.npz")
obs, acts, stored, true = z["observations"][:, 0], z["actions"][:, 0], z["rewards"][:, 0], z["true_rewards"][:, 0]
def raw(o, a):
    with torch.no_grad():
        return ens.member_rewards(torch.as_tensor(o, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32)).numpy()
store = LabelStore(run / "labels.sqlite")
hs = sorted({h for l in store.labels(include_skips=False) for h in (l.left, l.right)})
clips = store.get_clips(hs, render_state=False)
lo = np.concatenate([c.obs for c in clips]); la = np.concatenate([c.acts for c in clips])
rl = raw(lo, la)
k = np.random.default_rng(0).choice(len(lo), size=min(len(lo), 10000), replace=False)
print(f"{run}: {len(hs)} labelled clips, {len(lo)} steps; saved out_mean {ens.out_mean.numpy().round(3)}, out_std {ens.out_std.numpy().round(3)}")
print("stored reward check (last 1000 steps): stored mean", stored[-1000:].mean().round(3))
print("window_end  true/step  raw_std_recent(mean over members)  raw_std_recent+labelled  ratio  recent_mean  mixed_mean")
for end in list(range(60000, 300001, 30000)) + [291000]:
    r = raw(obs[end - 10000:end], acts[end - 10000:end])
    mix = np.concatenate([r, rl[:, k]], axis=1)
    sr, sm = r.std(1).mean(), mix.std(1).mean()
    print(f"{end:7d}  {true[end-10000:end].mean():6.2f}  {sr:8.4f}  {sm:8.4f}  {sm/sr:5.2f}  {r.mean(1).mean():7.3f}  {mix.mean(1).mean():7.3f}")
