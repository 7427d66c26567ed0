"""Score an on-policy rollout in one batch, after it is collected, instead of step by step.

A learned-reward run spent most of its reward-inference time on per-step overhead: one
ensemble call for one environment step, 300,000 times in a 300k-step run. With
``LearnedRewardVecEnv(deferred=True)`` the wrapper pays the agent 0 and keeps each step;
:class:`DeferredRewards` (driven by the preference callback) then, at the end of each rollout,
before anything else happens there:

1. scores every kept step in one batched ensemble call (the model that was live for the
   whole rollout: updates go live only at rollout ends, after this);
2. replays what ``VecNormalize`` did to the rewards during the rollout, now with the learned
   rewards: the discounted running return, its running variance, the scaling and clipping,
   starting from the statistics it had when the rollout began;
3. adds the scaled rewards to the rollout buffer (where SB3 has already added the
   value-bootstrap of time-limit truncations to the zero rewards) and recomputes returns and
   advantages.

The result is the same buffer that per-step scoring gives, up to float rounding
(``tests/test_deferred_reward.py`` compares the two).
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, unwrap_vec_wrapper

from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv


class DeferredRewards:
    """Write a deferred-scoring wrapper's rewards into an on-policy algorithm's rollouts."""

    def __init__(self, reward_env: LearnedRewardVecEnv) -> None:
        if not reward_env.deferred:
            raise ValueError("DeferredRewards needs a LearnedRewardVecEnv(deferred=True)")
        self.reward_env = reward_env
        self._norm_state: tuple[float, np.ndarray, np.ndarray, np.ndarray] | None = None

    @staticmethod
    def _vecnormalize(env: VecEnv | None) -> VecNormalize | None:
        vn = unwrap_vec_wrapper(env, VecNormalize) if env is not None else None
        return vn if isinstance(vn, VecNormalize) and vn.norm_reward and vn.training else None

    def rollout_start(self, env: VecEnv | None) -> None:
        """Remember VecNormalize's reward statistics as the rollout begins."""
        vn = self._vecnormalize(env)
        self._norm_state = None if vn is None else (
            float(vn.ret_rms.count), np.array(vn.ret_rms.mean), np.array(vn.ret_rms.var),
            np.array(vn.returns))

    def rollout_end(self, model: BaseAlgorithm, env: VecEnv | None,
                    rollout_locals: dict[str, Any]) -> list[float]:
        """Score the rollout and fix ``model.rollout_buffer`` (see the module docstring).

        Returns the learned returns of the episodes that ended in the rollout.
        """
        scored = self.reward_env.score_pending()
        if scored is None:
            return []
        rewards, dones, ended = scored
        t0 = time.perf_counter()
        vn = self._vecnormalize(env)
        if vn is not None:
            rewards = self._replay_normalisation(vn, rewards, dones)
        buf = model.rollout_buffer  # type: ignore[attr-defined]
        if buf.rewards.shape != rewards.shape:
            raise RuntimeError(f"deferred rewards {rewards.shape} do not match the rollout "
                               f"buffer {buf.rewards.shape}")
        buf.rewards += rewards.astype(buf.rewards.dtype)
        buf.compute_returns_and_advantage(last_values=rollout_locals["values"],
                                          dones=rollout_locals["dones"])
        self.reward_env.reward_seconds += time.perf_counter() - t0  # timed as inference
        return ended

    def _replay_normalisation(self, vn: VecNormalize, rewards: np.ndarray,
                              dones: np.ndarray) -> np.ndarray:
        """VecNormalize.step_wait's reward path, step by step, in plain floats.

        The same arithmetic as SB3's ``RunningMeanStd.update`` (float64, Chan's parallel
        update of a batch of ``num_envs`` returns) and ``normalize_reward``, bit for bit
        (``tests/test_deferred_reward.py``). With one env it stays in Python floats, where a
        rollout step is a handful of scalar operations and numpy's per-call overhead was most
        of this function's cost (6-11 s per 300k steps, measured). With two or more envs the
        batch moments come from ``np.mean``/``np.var`` as in SB3: an in-order ``sum()``
        matched numpy for n < 8 on the 2-core VM and missed it by one ulp on the 16-core
        device machine, whose numpy build reduces in another order.
        """
        rms, gamma, eps, clip = vn.ret_rms, float(vn.gamma), float(vn.epsilon), vn.clip_reward
        if self._norm_state is not None:  # back to the statistics of the rollout's start
            rms.count, rms.mean, rms.var, vn.returns = self._norm_state
        count, mean, var = float(rms.count), float(rms.mean), float(rms.var)
        ret = [float(r) for r in np.asarray(vn.returns, np.float64)]
        n = len(ret)
        out = np.empty_like(rewards, dtype=np.float32)
        for t, (rew_t, done_t) in enumerate(zip(rewards.astype(np.float64).tolist(),
                                                dones.tolist(), strict=True)):
            ret = [r * gamma + x for r, x in zip(ret, rew_t, strict=True)]
            if n == 1:  # one number: exact in any summation order
                batch_mean, batch_var = ret[0], 0.0
            else:  # numpy's own order, which SIMD builds choose per machine even for n < 8
                batch_mean, batch_var = float(np.mean(ret)), float(np.var(ret))
            delta, total = batch_mean - mean, count + n
            mean = mean + delta * n / total
            var = (var * count + batch_var * n + delta * delta * count * n / total) / total
            count = total
            scale = math.sqrt(var + eps)
            out[t] = [min(max(x / scale, -clip), clip) for x in rew_t]
            ret = [0.0 if d else r for r, d in zip(ret, done_t, strict=True)]
        rms.count, rms.mean, rms.var = count, np.array(mean), np.array(var)
        vn.returns = np.asarray(ret, np.float64)
        self._norm_state = None
        return out
