import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from prefrl.envs import load_preset, make_env, mujoco_render_state, restore_mujoco_state
from prefrl.reward import RewardEnsemble
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv, RecordRenderState
from prefrl.segments import SegmentBuffer


def venv_for(name, n_envs, horizon=None):
    preset = load_preset(name)
    if horizon:
        import dataclasses

        preset = dataclasses.replace(preset, horizon=horizon)
    return DummyVecEnv([
        (lambda i=i: Monitor(RecordRenderState(make_env(preset, seed=i)))) for i in range(n_envs)
    ]), preset


@pytest.mark.parametrize("n_envs", [1, 3])
def test_agent_sees_the_ensembles_reward_and_info_keeps_the_true_one(n_envs):
    venv, preset = venv_for("Pendulum", n_envs)
    ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu")
    buf = SegmentBuffer(preset.clip_len, rng=np.random.default_rng(0))
    env = LearnedRewardVecEnv(venv, ens, buf, env_id=preset.env_id)
    obs = env.reset()
    rng = np.random.default_rng(0)
    for _ in range(60):
        acts = rng.uniform(-2, 2, size=(n_envs, 1)).astype(np.float32)
        expected, _ = ens.predict(obs, acts)
        obs, rew, dones, infos = env.step(acts)
        assert rew.shape == (n_envs,) and rew.dtype == np.float32
        np.testing.assert_allclose(rew, expected, atol=1e-5)
        true = np.array([i["true_reward"] for i in infos])
        assert not np.allclose(true, rew)
        assert (true <= 0).all()  # Pendulum's true reward is a cost
        np.testing.assert_allclose([i["learned_reward"] for i in infos], rew, atol=1e-6)
    assert len(buf) >= n_envs  # windows of 2 * clip_len = 50 steps were cut into clips
    for c in buf.clips():
        assert c.length == preset.clip_len and c.env_id == preset.env_id


def test_true_mode_passes_the_true_reward_through():
    venv, preset = venv_for("Pendulum", 2)
    env = LearnedRewardVecEnv(venv, None, None, env_id=preset.env_id, mode="true")
    env.reset()
    _, rew, _, infos = env.step(np.zeros((2, 1), np.float32))
    np.testing.assert_allclose(rew, [i["true_reward"] for i in infos])
    with pytest.raises(ValueError, match="needs a reward ensemble"):
        LearnedRewardVecEnv(venv, None, None, env_id=preset.env_id, mode="learned")


def test_recorded_clips_match_the_rollout_and_carry_mujoco_render_state():
    venv, preset = venv_for("Hopper", 1, horizon=300)  # falls early: resets inside clips
    ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu")
    buf = SegmentBuffer(20, rng=np.random.default_rng(0))
    env = LearnedRewardVecEnv(venv, ens, buf, env_id=preset.env_id, window=40)
    obs = env.reset()
    seen_obs, seen_true = [], []
    rng = np.random.default_rng(1)
    for _ in range(300):  # one whole fixed-horizon episode
        act = rng.uniform(-1, 1, size=(1, 3)).astype(np.float32)
        seen_obs.append(obs[0].copy())
        obs, rew, dones, infos = env.step(act)
        seen_true.append(infos[0]["true_reward"])
    assert dones[0] and "episode_learned_return" in infos[0]
    assert len(buf) == 300 // 40 + 1  # 7 full windows and the 20-step tail flushed at the end
    seen_obs, seen_true = np.array(seen_obs), np.array(seen_true, np.float32)
    check = make_env(preset, seed=99)
    check.reset()
    for c in buf.clips():
        np.testing.assert_allclose(c.obs, seen_obs[c.step:c.step + c.length], atol=1e-6)
        np.testing.assert_allclose(c.true_rews, seen_true[c.step:c.step + c.length], atol=1e-5)
        assert c.render_state["qpos"].shape == (c.length, 6)
        # the render state reproduces the observation the agent acted on
        restore_mujoco_state(check, c.render_state["qpos"][3], c.render_state["qvel"][3])
        np.testing.assert_allclose(check.unwrapped._get_obs(), c.obs[3], atol=1e-4)
        assert set(mujoco_render_state(check)) == {"qpos", "qvel"}
