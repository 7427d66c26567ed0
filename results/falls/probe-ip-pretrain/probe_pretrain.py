"""What does InvertedPendulum's reward model know after pre-training on random-policy clips?

``.venv/bin/python results/falls/probe-ip-pretrain/probe_pretrain.py SEED [key=value ...]``

Builds the learner of a run exactly as ``prefrl train --env InvertedPendulum --labels 700
--oracle paper --seed SEED`` does (same clip collection, seeds, selector, pre-training share
and epochs), runs only its pre-training step, then scores scripted 100-step episodes (5 each,
env seeds 500-504) with the pre-trained ensemble (mean over members of the normalised return):

* ``balance``: a PD controller (a = 20 theta + 3 theta' + x + x', clipped to +-3) that balances
  all 100 steps (true return 100);
* ``throw``: a constant push of +3 or -3 (the pole falls at step 2-3; the higher of the two is
  printed), the exploit the failing runs' agents found;
* ``random``: uniform random actions (what PPO starts from; true return about 5);
* ``pdT+throw``: balance for T steps, then push (true return about T).

``spearman``: rank correlation of learned against true return over the 11 scripted behaviours.
A model that would steer PPO right has ``bal > rand > thr``.

Keys: ``clip_len``, ``labels`` (pre-training asks a quarter of it), ``pclips`` (random-policy
clips, preset 400), ``epochs``, ``hidden`` (e.g. ``16,16``), ``acts=0`` (state-only reward),
``full=1`` (the full reward schedule), ``explore=P`` (random actions held, resampled with
probability P per step), ``mix=1`` (half held-action, half i.i.d. clips), ``scale=Q`` (uniform actions times a
scale drawn from [0, 1], redrawn with probability Q per step), ``posonly=1`` (the reward
model sees the cart position and pole angle only).
"""

import sys
import tempfile

import numpy as np
import torch
from scipy.stats import spearmanr

from prefrl.envs import make_env
from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.presets import load_preset
from prefrl.query import clip_returns
from prefrl.reward.trainer import TrainerConfig
from prefrl.rollouts import collect_clips
from prefrl.types import Clip

torch.set_num_threads(1)


def obs_fn(kv: dict[str, str]):
    """``posonly=1``: the reward model sees positions only (velocities zeroed)."""
    if kv.get("posonly") != "1":
        return None

    def positions(obs: np.ndarray) -> np.ndarray:
        out = np.array(obs, np.float32, copy=True)
        out[..., 2:] = 0.0
        return out

    return positions


def pretrain(seed: int, kv: dict[str, str], env, preset) -> tuple[PreferenceLearner, dict]:
    """The learner of a run after its pre-training step, and the step's metrics."""
    clip_len = int(kv.get("clip_len", preset.clip_len))
    pclips = int(kv.get("pclips", 400))
    per_ep = max(4, preset.horizon // clip_len // 2)
    policy = None
    if "explore" in kv:
        p, erng, held = float(kv["explore"]), np.random.default_rng(seed + 7), [np.zeros(1)]

        def policy(_obs):
            if erng.random() < p:
                held[0] = erng.uniform(env.action_space.low, env.action_space.high)
            return held[0].astype(np.float32)

    if "scale" in kv:  # i.i.d. uniform actions times a scale in [0, 1], resampled ~per episode
        q, srng, sc = float(kv["scale"]), np.random.default_rng(seed + 8), [1.0]

        def policy(_obs):
            if srng.random() < q:
                sc[0] = srng.random()
            return (sc[0] * srng.uniform(env.action_space.low, env.action_space.high)
                    ).astype(np.float32)

    clips = collect_clips(env, pclips, clip_len, np.random.default_rng(seed + 10_000),
                          clips_per_episode=per_ep, source_run="probe:random",
                          episode_steps=2000, policy=policy, obs_transform=obs_fn(kv))
    if "mix" in kv:
        clips = clips[: pclips // 2] + collect_clips(
            env, pclips - pclips // 2, clip_len, np.random.default_rng(seed + 10_001),
            clips_per_episode=per_ep, source_run="probe:random", episode_steps=2000)
    hidden = [int(h) for h in kv.get("hidden", "64,64").split(",")]
    lc = LearnerConfig(
        labels=int(kv.get("labels", 700)), total_steps=200_000, pretrain_frac=0.25,
        ensemble_size=3, net_kwargs=dict(hidden=hidden, use_actions=kv.get("acts", "1") == "1"),
        pretrain_epochs=int(kv.get("epochs", 100)),
        trainer=TrainerConfig() if kv.get("full") else TrainerConfig.fast())
    learner = PreferenceLearner.create(
        env.observation_space, env.action_space, lc, tempfile.mkdtemp() + "/labels.sqlite",
        oracle="paper", clip_len=clip_len, seed=seed)
    return learner, learner.pretrain(clips)


def main() -> None:
    """Pre-train, score the scripted behaviours, print one line (see the docstring)."""
    seed, kv = int(sys.argv[1]), dict(a.split("=", 1) for a in sys.argv[2:])
    preset = load_preset("InvertedPendulum")
    env = make_env(preset, seed=seed + 10_000)
    learner, metrics = pretrain(seed, kv, env, preset)
    rng = np.random.default_rng(0)

    def pd(o, t):
        return np.clip(20 * o[1] + 3 * o[3] + o[0] + o[2], -3, 3)

    def episode(policy, env_seed):
        o, _ = env.reset(seed=env_seed)
        obs, acts, rews = [], [], []
        for t in range(preset.horizon):
            a = np.asarray(policy(o, t), np.float32).reshape(1)
            obs.append(o)
            acts.append(a)
            o, r, *_ = env.step(a)
            rews.append(r)
        obs = np.array(obs, np.float32)
        if obs_fn(kv) is not None:
            obs = obs_fn(kv)(obs)
        return Clip(obs=obs, acts=np.array(acts), true_rews=np.array(rews),
                    env_id="probe")

    behaviours = {"balance": pd, "throw+": lambda o, t: 3.0, "throw-": lambda o, t: -3.0,
                  "random": lambda o, t: rng.uniform(-3, 3)}
    for T in (5, 10, 20, 50):
        behaviours[f"pd{T}+throw"] = (lambda T: lambda o, t: pd(o, t) if t < T else 3.0)(T)
        behaviours[f"pd{T}+rand"] = (
            lambda T: lambda o, t: pd(o, t) if t < T else rng.uniform(-3, 3))(T)
    true, learned = {}, {}
    for name, policy in behaviours.items():
        eps = [episode(policy, 500 + i) for i in range(5)]
        true[name] = float(np.mean([e.true_rews.sum() for e in eps]))
        learned[name] = float(clip_returns(learner.ensemble, eps).mean(0).mean())
    names = list(behaviours)
    rho = spearmanr([true[n] for n in names], [learned[n] for n in names]).statistic
    thr = max(learned["throw+"], learned["throw-"])
    bal, rand = learned["balance"], learned["random"]
    print(f"seed {seed} [{' '.join(sys.argv[2:]) or 'preset'}] "
          f"val_acc {metrics.get('reward/val_acc', float('nan')):.2f} spearman {rho:.2f} "
          f"bal {bal:.1f} thr {thr:.1f} rand {rand:.1f} "
          f"pd5t {learned['pd5+throw']:.1f} pd20t {learned['pd20+throw']:.1f} "
          f"pd50t {learned['pd50+throw']:.1f} | right_order {bal > rand > thr}")


if __name__ == "__main__":
    main()
