"""Roll out final Swimmer policies; score their steps with final reward models; compare to true."""
import sys, json
import numpy as np, gymnasium as gym, torch
from stable_baselines3 import PPO
from prefrl.reward.model import load_reward
torch.set_num_threads(1)
RUNS = "/work/gridout/s19-swimmer-1m/Swimmer"
def rollout(cell, episodes=3, seed=100):
    ck = f"{RUNS}/{cell}/checkpoint"
    pol = PPO.load(f"{ck}/policy.zip", device="cpu")
    vn = np.load(f"{ck}/vecnorm.npz")
    m, v = vn["obs_mean"], vn["obs_var"]
    env = gym.make("Swimmer-v5")
    O, A, R = [], [], []
    for e in range(episodes):
        o, _ = env.reset(seed=seed + e)
        for t in range(1000):
            a, _ = pol.predict(np.clip((o - m) / np.sqrt(v + 1e-8), -10, 10), deterministic=True)
            O.append(o); A.append(a)
            o, r, term, trunc, _ = env.step(a); R.append(r)
    return np.array(O, np.float32), np.array(A, np.float32), np.array(R, np.float32)
models = {k: load_reward(f"/work/exp/s21/model-{k}", device="cpu") for k in sys.argv[1].split(",")}
for cell in sys.argv[2].split(","):
    O, A, R = rollout(cell)
    print(f"== policy {cell}: true return/episode {R.sum()/3:.1f}, per-step mean {R.mean():.4f} std {R.std():.4f}")
    for k, mdl in models.items():
        L, S = mdl.predict(O, A)
        p = np.corrcoef(L, R)[0, 1]
        slope, icpt = np.polyfit(R, L, 1)
        res = L - (slope * R + icpt)
        q = np.quantile(R, [0, .1, .3, .5, .7, .9, 1])
        bins = [f"{R[(R>=a)&(R<=b)].mean():+.2f}->{L[(R>=a)&(R<=b)].mean():+.2f}" for a, b in zip(q[:-1], q[1:])]
        print(f"  model {k}: learned/episode {L.sum()/3:+.1f} per-step mean {L.mean():+.3f}, pearson {p:.3f}, fit L={slope:.2f}*r{icpt:+.3f}, "
              f"residual mean where r<0 {res[R<0].mean() if (R<0).any() else float('nan'):+.3f} r>0 {res[R>0].mean():+.3f}; spread mean {S.mean():.3f}")
        print("     true->learned by decile bins:", " ".join(bins))
