"""Scoring a rollout in one batch at its end gives PPO the buffer that per-step scoring gives."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize

from prefrl.reward import RewardEnsemble
from prefrl.sb3.deferred import DeferredRewards
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv


class Capture(BaseCallback):
    """Copies of the rollout buffer at each rollout end, after deferred scoring if any."""

    def __init__(self, deferred: DeferredRewards | None) -> None:
        super().__init__()
        self.deferred, self.rollouts, self.episodes = deferred, [], []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.deferred is not None:
            self.deferred.rollout_start(self.training_env)

    def _on_rollout_end(self) -> None:
        if self.deferred is not None:
            self.episodes += self.deferred.rollout_end(self.model, self.training_env,
                                                       self.locals)
        b = self.model.rollout_buffer
        self.rollouts.append({k: np.array(getattr(b, k)) for k in
                              ("rewards", "returns", "advantages", "values")})


def train(deferred: bool, norm_reward: bool, pessimism: float = 0.0):
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu",
                                     seed=0)
    reward_env = LearnedRewardVecEnv(venv, ens, None, env_id="Pendulum-v1", deferred=deferred,
                                     pessimism=pessimism)
    env = VecNormalize(reward_env, norm_obs=True, norm_reward=norm_reward, gamma=0.95)
    cb = Capture(DeferredRewards(reward_env) if deferred else None)
    # 64 steps x 2 envs per rollout; 4 rollouts cross Pendulum's 200-step time limit, so the
    # value bootstrap of truncated episodes is in the buffer too
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, n_epochs=2, gamma=0.95, seed=0,
                device="cpu")
    model.learn(total_timesteps=512, callback=cb)
    return cb, env, reward_env


@pytest.mark.parametrize("norm_reward", [True, False])
def test_deferred_scoring_matches_per_step_scoring(norm_reward: bool) -> None:
    per_step, env_a, wrap_a = train(False, norm_reward)
    batched, env_b, wrap_b = train(True, norm_reward)
    assert len(per_step.rollouts) == len(batched.rollouts) == 4
    for a, b in zip(per_step.rollouts, batched.rollouts, strict=True):
        for k in a:
            np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-4, err_msg=k)
        assert np.abs(a["rewards"]).sum() > 0
    if norm_reward:
        np.testing.assert_allclose(env_b.ret_rms.var, env_a.ret_rms.var, rtol=1e-5)
        assert env_b.ret_rms.count == env_a.ret_rms.count
    # episode learned returns: the same episodes (one 200-step episode per env) and values
    np.testing.assert_allclose(list(wrap_b.learned_returns), list(wrap_a.learned_returns),
                               rtol=1e-4)
    assert batched.episodes == list(wrap_b.learned_returns) and len(batched.episodes) == 2


def test_deferred_scoring_pays_pessimism_too() -> None:
    a, _, _ = train(False, True, pessimism=1.0)
    b, _, _ = train(True, True, pessimism=1.0)
    np.testing.assert_allclose(b.rollouts[0]["rewards"], a.rollouts[0]["rewards"], rtol=1e-4,
                               atol=1e-5)


def test_deferred_wrapper_pays_zero_until_scored() -> None:
    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu")
    env = LearnedRewardVecEnv(venv, ens, None, env_id="Pendulum-v1", deferred=True)
    env.reset()
    for _ in range(5):
        _, rew, _, info = env.step(np.zeros((2, 1), np.float32))
        assert not rew.any() and "learned_reward" not in info[0]
    rewards, dones, ended = env.score_pending()
    assert rewards.shape == dones.shape == (5, 2) and rewards.any() and ended == []
    assert env.score_pending() is None
    with pytest.raises(ValueError, match="deferred"):
        DeferredRewards(LearnedRewardVecEnv(venv, ens, None, env_id="Pendulum-v1"))


@settings(max_examples=30, deadline=None)
@given(n_envs=st.integers(1, 16), steps=st.integers(1, 60), seed=st.integers(0, 2**16),
       done_rate=st.sampled_from([0.0, 0.05, 0.5]), scale=st.sampled_from([1e-3, 1.0, 300.0]))
def test_replayed_normalisation_is_vecnormalize_bit_for_bit(n_envs, steps, seed, done_rate,
                                                            scale) -> None:
    """The plain-float replay gives exactly what VecNormalize's own reward path gives."""
    rng = np.random.default_rng(seed)
    rewards = (rng.normal(size=(steps, n_envs)) * scale).astype(np.float32)
    dones = rng.random((steps, n_envs)) < done_rate
    ref, fast = (VecNormalize(make_vec_env("Pendulum-v1", n_envs=n_envs), gamma=0.9)
                 for _ in range(2))
    for vn in (ref, fast):  # the same non-trivial statistics to start from
        vn.ret_rms.update(np.arange(5.0) * scale)
        vn.returns = np.linspace(-1, 1, n_envs) * scale
    expected = np.empty_like(rewards)
    for t in range(steps):  # VecNormalize.step_wait's reward path
        ref._update_reward(rewards[t])
        expected[t] = ref.normalize_reward(rewards[t])
        ref.returns[dones[t]] = 0
    dr = DeferredRewards.__new__(DeferredRewards)
    dr._norm_state = None
    got = dr._replay_normalisation(fast, rewards, dones)
    np.testing.assert_array_equal(got, expected)
    assert fast.ret_rms.count == ref.ret_rms.count
    assert fast.ret_rms.mean == ref.ret_rms.mean and fast.ret_rms.var == ref.ret_rms.var
    np.testing.assert_array_equal(fast.returns, ref.returns)
