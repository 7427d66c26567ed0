"""Offline side check: first pairs by an untrained ensemble's disagreement, or uniformly.

Usage: ``python first_pairs.py EXPLORE_REPLAY RUNNER_REPLAY [N] [REPS]`` (defaults 25, 20).
Clips, teacher and evaluation as in ``first_labels.py``. "disagreement" draws 10N candidate
pairs from the 250 pool clips and keeps the N with the largest variance of the members'
P(right) under a freshly initialised ensemble (what a run's first session does); "uniform"
keeps the first N candidates (PEBBLE's first session).
"""

import sys

import numpy as np
import torch
from first_labels import SETTINGS, Pairs, clip_windows, learned_returns, runner_clips
from scipy.special import expit
from scipy.stats import spearmanr

from prefrl.envs import load_preset
from prefrl.reward.ensemble import RewardEnsemble, as_tensor
from prefrl.reward.offline import spaces_of
from prefrl.reward.trainer import RewardTrainer

TRAINERS = ("fast (a run's default: early stopping, val 1/e, adaptive L2)",
            "full (no early stopping, val 1/e, adaptive L2)")


def main(explore: str, runner: str, n: int, reps: int) -> None:
    """Print one row per selection and trainer."""
    torch.set_num_threads(1)
    e_obs, e_acts, e_ret = clip_windows(explore, 0, 10_000)
    r_obs, r_acts, r_ret = runner_clips(runner)
    preset = load_preset("HalfCheetah")
    obs_space, act_space, _ = spaces_of(preset)
    for how in ("uniform", "disagreement"):
        for name in TRAINERS:
            held_rho, run_rho, gaps = [], [], []
            for rep in range(reps):
                rng = np.random.default_rng(100 + rep)
                perm = rng.permutation(len(e_ret))
                pool, held = perm[:250], perm[250:]
                cand_l, cand_r = rng.choice(pool, 10 * n), rng.choice(pool, 10 * n)
                cand_l, cand_r = cand_l[cand_l != cand_r], cand_r[cand_l != cand_r]
                top = np.arange(n)
                if how == "disagreement":
                    scorer = RewardEnsemble.from_spaces(obs_space, act_space, 3, seed=1000 + rep,
                                                        **dict(preset.reward_model))
                    scorer.eval()
                    with torch.no_grad():
                        member = scorer.member_clip_returns(
                            as_tensor(e_obs, scorer.device),
                            as_tensor(e_acts, scorer.device)).cpu().numpy()
                    spread = expit(member[:, cand_r] - member[:, cand_l]).var(0)
                    top = np.argsort(-spread, kind="stable")[:n]
                left, right = cand_l[top], cand_r[top]
                gaps.append(np.median(np.abs(e_ret[right] - e_ret[left])))
                truth = (e_ret[right] > e_ret[left]).astype(float)
                coin = rng.random(len(left)) < 0.1
                mu = np.where(coin, (rng.random(len(left)) < 0.5).astype(float), truth)
                ens = RewardEnsemble.from_spaces(obs_space, act_space, 3, seed=rep,
                                                 **dict(preset.reward_model))
                RewardTrainer(ens, SETTINGS[name], rng=np.random.default_rng(rep)).train(
                    Pairs(e_obs, e_acts, left, right, mu), 100)
                held_rho.append(spearmanr(learned_returns(ens, e_obs[held], e_acts[held]),
                                          e_ret[held])[0])
                run_rho.append(spearmanr(learned_returns(ens, r_obs, r_acts), r_ret)[0])
            h, r = np.array(held_rho), np.array(run_rho)
            print(f"N={n} | {how} | {name} | pair |gap| median {np.mean(gaps):.1f} | held-out "
                  f"exploration {h.mean():+.2f} ({h.min():+.2f}) | runner {r.mean():+.2f} "
                  f"({r.min():+.2f}), {int(np.sum(r < 0.3))}/{reps} below 0.3", flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], int(a[2]) if len(a) > 2 else 25, int(a[3]) if len(a) > 3 else 20)
