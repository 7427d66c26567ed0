"""SAC in the loop: relabelling, state entropy, feedback sessions, kill -9 and resume."""

import csv
import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from killing import kill_after_checkpoint

from prefrl.config import ConfigError, TrainConfig
from prefrl.entropy import StateEntropy, knn_distance
from prefrl.envs import ALGOS, load_preset
from prefrl.query import SessionSchedule
from prefrl.reward import RewardEnsemble
from prefrl.sb3.sac import RelabelReplayBuffer
from prefrl.store import LabelStore

PY = sys.executable
OBS = gym.spaces.Box(-5.0, 5.0, (3,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (1,), np.float32)  # Pendulum's bounds: scaling matters

# Pendulum with a small, fast SAC (tests only): 4 steps per gradient step, tiny nets
TINY_PRESET = """
env_id = "Pendulum-v1"
horizon = 200
termination_penalty = 0.0
clip_len = 25
labels = 20
steps = 1000
algo = "sac"
n_envs = 1
[sac]
learning_rate = 0.001
learning_starts = 100
batch_size = 64
train_freq = 4
policy_kwargs = { net_arch = [32, 32] }
unsup_steps = 400
feedback_every = 200
reward_schedule = "full"  # the MuJoCo presets' SAC reward training
reward_l2 = "off"
reward_val_frac = 0
[reward_model]
hidden = [32, 32]
"""
TINY_ARGS = ["--update-epochs", "2", "--pretrain-epochs", "5", "--no-progress",
             "--no-tensorboard", "--torch-threads", "1"]


def filled_buffer(n_steps, size=50, n_envs=2, seed=0):
    rng = np.random.default_rng(seed)
    buf = RelabelReplayBuffer(size * n_envs, OBS, ACT, device="cpu", n_envs=n_envs)
    buf.rewards[:] = 7.0  # a sentinel: unfilled slots must keep it
    for _ in range(n_steps):
        r = rng.normal(size=n_envs).astype(np.float32)
        infos = [{"true_reward": float(10 + i)} for i in range(n_envs)]
        buf.add(rng.normal(size=(n_envs, 3)).astype(np.float32),
                rng.normal(size=(n_envs, 3)).astype(np.float32),
                rng.uniform(-1, 1, size=(n_envs, 1)).astype(np.float32), r,
                np.zeros(n_envs, np.float32), infos)
    return buf


def columns(buf):
    return {c: getattr(buf, c).copy() for c in
            ("observations", "next_observations", "actions", "true_rewards", "dones", "rewards")}


@pytest.mark.parametrize("n_steps", [30, 80])  # part-filled, and wrapped around (full)
def test_relabel_rewrites_only_the_stored_rewards_with_the_live_model(n_steps):
    buf = filled_buffer(n_steps)
    before = columns(buf)
    ens = RewardEnsemble.from_spaces(OBS, ACT, 3, seed=1, device="cpu", hidden=[16, 16])
    m = buf.relabel(ens, max_chunk_bytes=200)  # many small chunks
    n = buf.n_filled
    assert n == min(n_steps, 50) and m["sac/relabel_rows"] == n * 2
    obs = buf.observations[:n].reshape(-1, 3)
    env_acts = -2.0 + 0.5 * (buf.actions[:n].reshape(-1, 1) + 1.0) * 4.0
    want, _ = ens.predict(obs, env_acts)
    np.testing.assert_allclose(buf.rewards[:n].reshape(-1), want, rtol=1e-5, atol=1e-6)
    assert not np.allclose(buf.rewards[:n], before["rewards"][:n])
    assert (buf.rewards[n:] == 7.0).all()  # unfilled slots untouched
    for c in ("observations", "next_observations", "actions", "true_rewards", "dones"):
        np.testing.assert_array_equal(getattr(buf, c), before[c], err_msg=c)
    assert (buf.true_rewards[:n] == np.array([10.0, 11.0])).all()


def test_relabel_with_pessimism_stores_what_the_wrapper_pays():
    """With --reward-pessimism K, stored rewards are mean - K * std, as the agent is paid."""
    buf = filled_buffer(20)
    ens = RewardEnsemble.from_spaces(OBS, ACT, 3, seed=2, device="cpu", hidden=[16, 16])
    buf.relabel(ens, pessimism=2.0)
    n = buf.n_filled
    obs = buf.observations[:n].reshape(-1, 3)
    env_acts = -2.0 + 0.5 * (buf.actions[:n].reshape(-1, 1) + 1.0) * 4.0
    mean, spread = ens.predict(obs, env_acts)
    assert spread.max() > 0
    np.testing.assert_allclose(buf.rewards[:n].reshape(-1), mean - 2.0 * spread,
                               rtol=1e-5, atol=1e-6)


def test_replay_checkpoint_holds_only_the_filled_part_and_round_trips(tmp_path):
    buf = filled_buffer(30, size=2000)
    size = buf.save(tmp_path / "replay.npz")
    assert size == (tmp_path / "replay.npz").stat().st_size
    with np.load(tmp_path / "replay.npz", allow_pickle=False) as z:
        assert len(z["rewards"]) == 30
    full_bytes = sum(getattr(buf, c).nbytes for c in ("observations", "next_observations"))
    assert size < full_bytes / 10  # 30 of 2000 slots
    other = RelabelReplayBuffer(4000, OBS, ACT, device="cpu", n_envs=2)
    other.load(tmp_path / "replay.npz")
    assert other.pos == buf.pos and other.full == buf.full
    for c, v in columns(buf).items():
        np.testing.assert_array_equal(getattr(other, c)[:30], v[:30], err_msg=c)
    wrong = RelabelReplayBuffer(10, OBS, ACT, device="cpu", n_envs=2)
    with pytest.raises(ValueError, match="slots"):
        wrong.load(tmp_path / "replay.npz")


def test_knn_distance_matches_brute_force_in_any_chunking():
    g = torch.Generator().manual_seed(0)
    x, pool = torch.randn(20, 4, generator=g), torch.randn(300, 4, generator=g)
    want = torch.cdist(x, pool).kthvalue(5, dim=1).values
    for chunk in (80, 4 * 20 * 7, 64 << 20):
        torch.testing.assert_close(knn_distance(x, pool, 5, max_chunk_bytes=chunk), want)


def test_state_entropy_is_larger_for_novel_states():
    rng = np.random.default_rng(0)
    pool = rng.normal(0.0, 1.0, size=(2000, 3)).astype(np.float32)
    seen, novel = pool[:5], np.array([[6.0, 6.0, 6.0], [0.0, -7.0, 5.0]], np.float32)
    ent = StateEntropy(k=5)
    r = ent.reward(torch.as_tensor(np.concatenate([seen, novel])), pool)
    assert r[5:].min() > 3 * r[:5].max()


def test_pretraining_samples_carry_state_entropy_not_the_stored_reward():
    buf = filled_buffer(40)
    stored = buf.sample(64).rewards
    assert set(np.unique(stored.numpy())) <= set(np.unique(buf.rewards[:40]))
    buf.intrinsic = StateEntropy(k=5)
    batch = buf.sample(64)
    assert batch.rewards.shape == (64, 1) and (batch.rewards > 0).all()
    assert not np.isin(batch.rewards.numpy(), buf.rewards[:40]).any()
    assert batch.observations.shape == (64, 3)


@settings(max_examples=200, deadline=None)
@given(total=st.integers(0, 2000), total_steps=st.integers(1, 200_000),
       every=st.integers(1, 50_000), start_frac=st.floats(0.0, 0.99),
       frac=st.floats(0.0, 1.0), stride=st.integers(1, 5000))
def test_feedback_sessions_spend_exactly_the_budget(total, total_steps, every, start_frac,
                                                    frac, stride):
    s = SessionSchedule(total, total_steps, frac, every=every,
                        start=int(start_frac * total_steps))
    stride = max(stride, total_steps // 500)  # at most ~500 calls per example
    asked, prev_target, t = 0, 0, 0
    while True:
        asked += s.due(t, asked)
        target = s.target(t)
        assert prev_target <= target <= total  # never more than the budget, never backwards
        prev_target = target
        if t >= total_steps:
            break
        t = min(t + stride, total_steps)
    assert asked == total
    if s.start > 0:
        assert s.target(s.start - 1) == 0
    assert s.target(s.start + (s.n_sessions - 1) * s.every) == total  # by the last session
    jumps = {s.start + k * s.every for k in range(s.n_sessions)} | {total_steps}
    probe = np.random.default_rng(total).integers(0, total_steps, 30)
    for p in probe:  # the count only changes at session steps
        if p + 1 not in jumps:
            assert s.target(int(p)) == s.target(int(p) + 1)


def test_sac_presets_and_config():
    assert "sac" in ALGOS
    for name in ("HalfCheetah", "Hopper", "Walker2d", "Ant", "Swimmer", "Reacher",
                 "InvertedPendulum", "InvertedDoublePendulum", "Pendulum"):
        p = load_preset(name)
        assert p.n_envs_for("sac") == 1 and not p.normalize_obs_for("sac"), name
        assert p.algo_overrides["sac"]["unsup_steps"] > 0
    rc = TrainConfig(env="HalfCheetah", algo="sac", steps=1_000_000, labels=100).resolve()
    assert (rc.unsup_steps, rc.feedback_every, rc.update_every) == (10_000, 20_000, 20_000)
    small = TrainConfig(env="HalfCheetah", algo="sac", steps=20_000, labels=100).resolve()
    assert small.unsup_steps == 4000 and small.feedback_every == 1600
    assert TrainConfig(env="Hopper", algo="sac", reward="true").resolve().unsup_steps == 0
    # SAC's first session has few labels: its reward trains on every label every epoch (as
    # PEBBLE's does), without weight decay but on HalfCheetah (adaptive L2, 1/e held out,
    # standardised on the labelled clips too); PPO keeps the default (fast, 1/e, adaptive L2)
    for name in ("Walker2d", "Hopper", "Pendulum"):
        sac = TrainConfig(env=name, algo="sac").resolve()
        assert (sac.reward_schedule, sac.reward_l2, sac.reward_val_frac, sac.reward_norm) == (
            "full", "off", 0, "recent")
    cheetah = TrainConfig(env="HalfCheetah", algo="sac").resolve()
    assert (cheetah.reward_schedule, cheetah.reward_l2, cheetah.reward_norm) == (
        "full", "adaptive", "labelled") and cheetah.reward_val_frac == pytest.approx(1 / np.e)
    for name in ("HalfCheetah", "Walker2d", "Hopper", "Pendulum"):
        ppo = TrainConfig(env=name, algo="ppo").resolve()
        assert (ppo.reward_schedule, ppo.reward_l2, ppo.reward_val_frac) == (
            "fast", "adaptive", pytest.approx(0.3679, abs=1e-4))
    with pytest.raises(ConfigError, match="unsup-steps"):
        TrainConfig(env="Pendulum", algo="sac", steps=1000, unsup_steps=1000).resolve()
    with pytest.raises(ConfigError, match="continuous actions"):
        TrainConfig(env="Pong", algo="sac").resolve()


def test_tiny_sac_run_relabels_to_the_final_model(tmp_path):
    """PEBBLE then feedback sessions; the stored rewards end up the live model's."""
    from prefrl.training import train

    preset = tmp_path / "TinySAC.toml"
    preset.write_text(TINY_PRESET)
    run = tmp_path / "run"
    res = train(TrainConfig(env=str(preset), steps=800, labels=12, unsup_steps=300,
                            feedback_every=100, update_epochs=2, pretrain_epochs=5,
                            progress=False, tensorboard=False, torch_threads=1, run_dir=run))
    assert res.algo == "sac" and res.steps == 800 and res.labels == 12
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["switched_at"] == 300 and state["entropy"]["count"] > 1
    assert state["replay_bytes"] == (run / "checkpoint" / "replay.npz").stat().st_size
    with LabelStore(run / "labels.sqlite") as store:
        steps = sorted({q.env_step for q in store.queries()})
    assert steps[0] == 300 and set(steps) <= {300, 400, 500, 600, 700}
    replay = np.load(run / "checkpoint" / "replay.npz")
    learner = torch.load(run / "checkpoint" / "learner.pt", weights_only=True)
    ens = RewardEnsemble.from_checkpoint(learner["ensemble_configs"], learner["ensemble"],
                                         device="cpu")
    acts = -2.0 + 0.5 * (replay["actions"].reshape(-1, 1) + 1.0) * 4.0
    want, _ = ens.predict(replay["observations"].reshape(-1, 3), acts)
    assert len(want) == 800
    np.testing.assert_allclose(replay["rewards"].reshape(-1), want, rtol=1e-4, atol=1e-4)
    assert not np.allclose(replay["true_rewards"], replay["rewards"])


@pytest.mark.slow
def test_sac_on_the_pendulum_preset_completes(tmp_path):
    """The real preset (zoo values), a few thousand steps, learned and true reward."""
    from prefrl.training import train

    for reward in ("learned", "true"):
        res = train(TrainConfig(env="Pendulum", algo="sac", steps=3000, labels=20,
                                reward=reward, update_epochs=2, pretrain_epochs=5,
                                progress=False, tensorboard=False, torch_threads=1,
                                run_dir=tmp_path / reward))
        assert res.steps == 3000 and res.true_return < 0
        assert res.labels == (20 if reward == "learned" else 0)


def test_killed_sac_run_resumes_with_its_replay_buffer(tmp_path):
    preset = tmp_path / "TinySAC.toml"
    preset.write_text(TINY_PRESET)
    run = tmp_path / "run"
    args = ["--env", str(preset), *TINY_ARGS, "--run-dir", str(run)]
    proc = subprocess.Popen([PY, "-m", "prefrl.cli", "train", *args, "--checkpoint-every",
                             "200"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    at_kill = kill_after_checkpoint(proc, run, 400)
    assert at_kill["replay_bytes"] > 0
    assert at_kill["switched_at"] == 200  # the preset's 400, capped at steps / 5
    with LabelStore(run / "labels.sqlite") as store:
        assert 0 < store.n_labels() < 20

    res = subprocess.run([PY, "-m", "prefrl.cli", "train", "--resume", str(run)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    with LabelStore(run / "labels.sqlite") as store:
        keys = [q.pair_key for q in store.queries()]
        assert store.n_labels() == 20 and len(keys) == len(set(keys)) == 20
    with (run / "metrics.csv").open() as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 1000
    replay = np.load(run / "checkpoint" / "replay.npz")
    assert len(replay["rewards"]) == 1000  # the transitions before the kill were kept
    final = json.loads((run / "checkpoint" / "state.json").read_text())
    assert final["switched_at"] == 200  # not pre-trained a second time


def test_reset_critic_reinitialises_critic_target_and_optimiser():
    from stable_baselines3 import SAC

    from prefrl.sb3.sac import reset_critic

    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8, 8]}, device="cpu",
                learning_starts=0, batch_size=16, seed=0)
    model.learn(64)  # some critic updates: weights and Adam state move away from init
    before = {k: v.clone() for k, v in model.critic.state_dict().items()}
    actor = {k: v.clone() for k, v in model.actor.state_dict().items()}
    reset_critic(model)
    after = model.critic.state_dict()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    for k, v in model.critic_target.state_dict().items():
        assert torch.equal(v, after[k])
    assert not model.critic.optimizer.state  # fresh Adam moments
    for k, v in model.actor.state_dict().items():
        assert torch.equal(v, actor[k])  # the actor is kept


def test_reset_actor_reinitialises_actor_optimiser_and_entropy_coefficient():
    from stable_baselines3 import SAC

    from prefrl.sb3.sac import reset_actor

    model = SAC("MlpPolicy", "Pendulum-v1", policy_kwargs={"net_arch": [8, 8]}, device="cpu",
                learning_starts=0, batch_size=16, ent_coef="auto_0.5", seed=0)
    model.learn(64)
    assert abs(model.log_ent_coef.item() - np.log(0.5)) > 1e-4  # alpha was learned
    before = {k: v.clone() for k, v in model.actor.state_dict().items()}
    critic = {k: v.clone() for k, v in model.critic.state_dict().items()}
    reset_actor(model)
    after = {k: v.clone() for k, v in model.actor.state_dict().items()}
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    assert not model.actor.optimizer.state and not model.ent_coef_optimizer.state
    assert model.log_ent_coef.item() == pytest.approx(np.log(0.5))
    assert model.ent_coef_optimizer.param_groups[0]["params"][0] is model.log_ent_coef
    for k, v in model.critic.state_dict().items():
        assert torch.equal(v, critic[k])  # the critic is kept
    model.learn(32, reset_num_timesteps=False)  # it trains on from the fresh state
    assert not torch.equal(model.actor.state_dict()["mu.weight"], after["mu.weight"])


def test_sac_run_with_reset_actor_switches_to_a_fresh_actor(tmp_path, monkeypatch):
    """--reset-actor: at the switch to the learned reward the actor is re-initialised once."""
    from prefrl.sb3 import sac
    from prefrl.training import train

    calls = []
    real = sac.reset_actor
    monkeypatch.setattr(sac, "reset_actor", lambda m: (calls.append(m.num_timesteps), real(m)))
    preset = tmp_path / "TinySAC.toml"
    preset.write_text(TINY_PRESET)
    train(TrainConfig(env=str(preset), steps=600, labels=8, unsup_steps=300,
                      feedback_every=100, update_epochs=2, pretrain_epochs=5, reset_actor=True,
                      progress=False, tensorboard=False, torch_threads=1,
                      run_dir=tmp_path / "run"))
    assert calls == [300]


def test_halfcheetah_sac_default_is_what_the_committed_250_label_ablation_ran(tmp_path):
    """results/sac-pebble's labels-250-l2-labelled-norm cells stand for the default's 250 cells."""
    import dataclasses
    from pathlib import Path

    from prefrl.bench.suites import get_suite

    root = Path(__file__).resolve().parents[1] / "results" / "sac-pebble"
    ablation = get_suite(str(root / "reward-l2-labelled-norm.json")).cells()
    suite = get_suite("sac-pebble").cells()
    for seed in (0, 1):
        cell = next(c for c in ablation if c.seed == seed)
        default = next(c for c in suite
                       if (c.env, c.setting, c.seed) == ("HalfCheetah", "labels-250", seed))
        ran, now = cell.train_config(tmp_path).resolve(), default.train_config(tmp_path).resolve()
        assert dataclasses.replace(ran, train=now.train, run_dir=now.run_dir) == now
