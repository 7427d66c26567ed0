"""Slow learning check (``make test-slow`` / ``pytest -m slow``): PPO on the learned reward.

Pendulum-v1, 100k steps, 300 synthetic labels from the paper's teacher (10% random answers), vs
the same PPO on the true reward with the same seed and steps, both evaluated on the true reward
(10 deterministic episodes). The learned-reward agent must reach >= 80% of the true-reward
agent's improvement over a random policy. About 3 minutes on 2 cores.
"""

import concurrent.futures as cf
import multiprocessing as mp

import pytest

from prefrl.config import TrainConfig


def _run(cfg):
    from prefrl.evaluate import evaluate_run
    from prefrl.training import train

    res = train(cfg)
    return res.as_dict(), evaluate_run(cfg.run_dir, episodes=10)


@pytest.mark.slow
def test_ppo_on_learned_reward_reaches_80_percent_of_true_reward_agent(tmp_path):
    from prefrl.envs import load_preset
    from prefrl.evaluate import random_policy_return

    common = dict(env="Pendulum", steps=100_000, seed=0, progress=False, tensorboard=False,
                  torch_threads=1)
    cfgs = [TrainConfig(**common, labels=300, oracle="paper", run_dir=tmp_path / "learned"),
            TrainConfig(**common, reward="true", run_dir=tmp_path / "true")]
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("spawn")) as pool:
        (learned, learned_eval), (true, true_eval) = pool.map(_run, cfgs)
    rand = random_policy_return(load_preset("Pendulum"), episodes=10)
    share = (learned_eval - rand) / (true_eval - rand)
    print(f"\nrandom {rand:.1f}, learned-reward agent {learned_eval:.1f}, true-reward agent "
          f"{true_eval:.1f}: {100 * share:.0f}%; reward acc {learned['reward_val_acc']:.3f}, "
          f"spearman {learned['corr_spearman']:.3f}; wall {learned['wall_s']:.0f} s vs "
          f"{true['wall_s']:.0f} s")
    assert learned["labels"] == 300
    assert share >= 0.8
