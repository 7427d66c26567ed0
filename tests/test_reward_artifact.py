"""The learned reward as an artifact: model format, offline training, eval, export, wrapper."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import prefrl
from prefrl.cli import main as cli_main
from prefrl.config import ConfigError, TrainConfig
from prefrl.reward.ensemble import RewardEnsemble
from prefrl.reward.model import (
    RewardModel,
    RewardModelError,
    load_reward,
    space_from_json,
    space_to_json,
)
from prefrl.reward.offline import evaluate_model, export_run_model, train_offline
from prefrl.store import LabelStore


def _model(obs_space, act_space, env_id, seed=0, clip_len=25):
    ens = RewardEnsemble.from_spaces(obs_space, act_space, 3, seed=seed, device="cpu")
    rng = np.random.default_rng(seed)
    obs = np.stack([obs_space.sample() for _ in range(64)])
    acts = np.stack([act_space.sample() for _ in range(64)])
    ens.set_input_stats(obs, acts)
    ens.fit_normalisation(obs, acts)
    with torch.no_grad():  # not the init: make sure weights travel, not just the seed
        for p in ens.parameters():
            p.add_(torch.as_tensor(rng.normal(0, 0.1, p.shape), dtype=p.dtype))
    ens.mark_changed()
    return RewardModel(ens, obs_space, act_space, env_id, clip_len), obs, acts


@pytest.mark.parametrize("env_id", ["Pendulum-v1", "CartPole-v1"])
def test_save_load_round_trip_gives_identical_rewards(tmp_path, env_id):
    env = gym.make(env_id)
    model, obs, acts = _model(env.observation_space, env.action_space, env_id)
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["format"] == "prefrl-reward-model" and doc["version"] == 1
    back = prefrl.load_reward(tmp_path / "m", device="cpu")
    for n in (1, 64):  # the fused small-batch path and the torch path
        assert np.array_equal(back(obs[:n], acts[:n]), model(obs[:n], acts[:n]))
    assert np.array_equal(back.predict(obs, acts)[1], model.predict(obs, acts)[1])
    assert back.env_id == env_id and back.clip_len == 25
    assert back.observation_space == env.observation_space
    assert back.action_space == env.action_space
    model.save(tmp_path / "m")  # overwriting a model folder is allowed
    (tmp_path / "other").mkdir()
    with pytest.raises(RewardModelError, match="not a reward model"):
        model.save(tmp_path / "other")


def test_cnn_model_round_trip(tmp_path):
    obs_space = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    act_space = gym.spaces.Discrete(6)
    model, obs, acts = _model(obs_space, act_space, "ALE/Pong-v5")
    model.save(tmp_path / "m")
    back = load_reward(tmp_path / "m", device="cpu")
    assert np.array_equal(back(obs[:8], acts[:8]), model(obs[:8], acts[:8]))
    assert json.loads((tmp_path / "m" / "model.json").read_text())["observation_space"] == {
        "type": "Box", "shape": [4, 84, 84], "dtype": "uint8", "low": 0.0, "high": 255.0}


def test_space_json_keeps_bounds_and_infinities():
    box = gym.spaces.Box(np.array([-1, -np.inf], np.float32), np.array([2, np.inf], np.float32))
    doc = space_to_json(box)
    assert doc["low"] == [-1.0, "-inf"] and json.dumps(doc)  # plain JSON
    assert space_from_json(json.loads(json.dumps(doc))) == box


def test_mismatched_env_or_space_is_refused(tmp_path):
    env = gym.make("Pendulum-v1")
    model, _, _ = _model(env.observation_space, env.action_space, "Pendulum-v1")
    path = model.save(tmp_path / "m")
    other = gym.make("MountainCarContinuous-v0")
    with pytest.raises(RewardModelError, match="is for Pendulum-v1, not MountainCarContinuous"):
        prefrl.LearnedReward(other, path)
    with pytest.raises(RewardModelError, match=r"observation space has shape \(2,\)") as e:
        prefrl.LearnedReward(other, path, check_id=False)
    assert "\n" not in str(e.value)
    bounds = gym.spaces.Box(-2 * env.observation_space.high, 2 * env.observation_space.high)
    with pytest.raises(RewardModelError, match="observation space has low bound"):
        model.check_spaces(bounds, env.action_space)
    with pytest.raises(RewardModelError, match="action space has Discrete"):
        model.check_spaces(env.observation_space, gym.spaces.Discrete(3))


def test_bad_model_folders_are_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(RewardModelError, match="no reward model"):
        load_reward(tmp_path)
    env = gym.make("Pendulum-v1")
    model, _, _ = _model(env.observation_space, env.action_space, "Pendulum-v1")
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**doc, "version": 99}))
    with pytest.raises(RewardModelError, match="format version 99"):
        load_reward(tmp_path / "m")
    doc["members"] = doc["members"][:2]
    (tmp_path / "m" / "model.json").write_text(json.dumps(doc))
    assert cli_main(["reward", "eval", str(tmp_path / "m"), str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prefrl: error: weights") and "\n" not in err


def test_wrapper_with_plain_sb3_ppo(tmp_path):
    from stable_baselines3 import PPO

    env = gym.make("Pendulum-v1")
    model, _, _ = _model(env.observation_space, env.action_space, "Pendulum-v1")
    path = model.save(tmp_path / "m")
    seen = []

    class Spy(gym.Wrapper):
        def step(self, action):
            out = self.env.step(action)
            seen.append((out[1], out[4]["learned_reward"], out[4]["true_reward"]))
            return out

    agent = PPO("MlpPolicy", Spy(prefrl.LearnedReward(gym.make("Pendulum-v1"), path)),
                n_steps=64, batch_size=32, n_epochs=1, seed=0, device="cpu")
    agent.learn(128)  # < 200 steps: no time-limit bootstrap in the buffer
    assert len(seen) == 128 and all(r == lr for r, lr, _ in seen)
    assert all(tr <= 0 for _, _, tr in seen)  # Pendulum's own reward, kept in info
    buf = agent.rollout_buffer
    obs = buf.observations.reshape(64, -1)
    acts = np.clip(buf.actions.reshape(64, -1), -2, 2)  # what SB3 sent to the env
    assert np.allclose(buf.rewards.reshape(-1), model(obs, acts), atol=1e-5)


def test_train_config_checks_reward_model_options(tmp_path):
    with pytest.raises(ConfigError, match="needs --reward-model"):
        TrainConfig(reward_model_frozen=True).resolve()
    with pytest.raises(ConfigError, match="no model.json"):
        TrainConfig(reward_model=tmp_path).resolve()
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(ConfigError, match="not --reward true"):
        TrainConfig(reward_model=tmp_path, reward="true").resolve()
    rc = TrainConfig(reward_model=tmp_path, reward_model_frozen=True, labels=1).resolve()
    assert rc.labels == 0


# --------------------------------------------------------------- a tiny real run
TINY = dict(env="Pendulum", steps=4096, labels=120, pretrain_clips=120, pretrain_epochs=30,
            update_epochs=5, progress=False, tensorboard=False, torch_threads=1, n_envs=1,
            seed=1)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from prefrl.training import train

    run = tmp_path_factory.mktemp("run") / "run"
    res = train(TrainConfig(**TINY, run_dir=run))
    return run, res


@pytest.mark.slow
def test_export_of_a_run_scores_its_labels_as_the_run_did(tiny_run, tmp_path, capsys):
    run, res = tiny_run
    assert cli_main(["reward", "export", str(run), "--out", str(tmp_path / "m")]) == 0
    model = load_reward(tmp_path / "m", device="cpu")
    state = torch.load(run / "checkpoint" / "learner.pt", weights_only=True)
    live = RewardEnsemble.from_checkpoint(state["ensemble_configs"], state["ensemble"], "cpu")
    obs = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
    acts = np.zeros((50, 1), np.float32)
    assert np.array_equal(model(obs, acts), live.predict(obs, acts)[0])
    report = evaluate_model(model, run / "labels.sqlite")
    assert abs(report.accuracy - res.reward_val_acc) <= 1.0 / report.n_pairs + 1e-9
    assert report.n_clips > 0 and report.spearman > 0.5
    assert model.meta["source"]["labels_trained_on"] == res.labels


@pytest.mark.slow
def test_offline_training_on_an_export_reproduces_the_run_accuracy(tiny_run, tmp_path, capsys):
    run, res = tiny_run
    with LabelStore(run / "labels.sqlite", create=False) as store:
        store.export(tmp_path / "export")
    out = tmp_path / "offline"
    assert cli_main(["reward", "train", str(tmp_path / "export"), "--out", str(out),
                     "--env", "Pendulum", "--epochs", "60"]) == 0
    assert "held-out accuracy" in capsys.readouterr().out
    model = load_reward(out, device="cpu")
    report = evaluate_model(model, tmp_path / "export")  # the run's own validation labels
    assert report.accuracy == pytest.approx(model.meta["training"]["val_acc"])
    n = report.n_pairs
    noise = 2 * math.sqrt(res.reward_val_acc * (1 - res.reward_val_acc) / n) + 1.0 / n
    assert abs(report.accuracy - res.reward_val_acc) <= max(noise, 0.1), (report, res)
    assert cli_main(["reward", "eval", str(out), str(tmp_path / "export"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["split"] == "val" and len(shown["reliability"]) > 1
    assert shown["pearson"] == pytest.approx(report.pearson)


@pytest.mark.slow
def test_frozen_and_fine_tuned_runs_start_from_a_model(tiny_run, tmp_path):
    from prefrl.training import train

    run, _ = tiny_run
    model = export_run_model(run)
    model.save(tmp_path / "m")
    small = dict(TINY, steps=1024, labels=10, pretrain_clips=20, pretrain_epochs=2,
                 update_epochs=1)
    frozen = train(TrainConfig(**small, reward_model=tmp_path / "m", reward_model_frozen=True,
                               run_dir=tmp_path / "frozen"))
    assert frozen.labels == 0 and frozen.learned_return is not None
    assert not (tmp_path / "frozen" / "labels.sqlite").exists()
    tuned = train(TrainConfig(**small, reward_model=tmp_path / "m", run_dir=tmp_path / "tuned"))
    assert tuned.labels == 10 and tuned.reward_val_acc is not None
    with pytest.raises(RewardModelError, match="is for Pendulum-v1, not InvertedPendulum"):
        train(TrainConfig(**dict(small, env="InvertedPendulum"), reward_model=tmp_path / "m",
                          reward_model_frozen=True, run_dir=tmp_path / "wrong"))


def test_offline_training_from_a_synthetic_oracle(tmp_path):
    """Labels of a perfect teacher on random Pendulum clips: the held-out accuracy is high."""
    from prefrl.oracles import SyntheticOracle
    from prefrl.rollouts import collect_clips
    from prefrl.types import ClipPair

    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(0)
    clips = collect_clips(env, 120, 25, rng)
    oracle = SyntheticOracle("perfect", rng=np.random.default_rng(1))
    with LabelStore(tmp_path / "labels.sqlite") as store:
        for j in range(120):  # 120 distinct pairs
            pair = ClipPair(clips[j], clips[(j + 10) % 120])
            store.add_label(oracle.label(pair, query_id=store.add_query(pair, "random", 0.0)))
    model, stats = train_offline(tmp_path / "labels.sqlite", env="Pendulum", epochs=40)
    assert stats["n_val"] > 20 and stats["val_acc"] > 0.8
    report = evaluate_model(model, tmp_path / "labels.sqlite", split="all")
    assert report.spearman > 0.8
    with pytest.raises(RewardModelError, match="are of Pendulum-v1, not HalfCheetah-v5"):
        train_offline(tmp_path / "labels.sqlite", env="HalfCheetah", epochs=1)


def _renormalised_pendulum():
    """A frozen model on 2 Pendulum envs, refit every 100 steps; with its ``out_mean`` before."""
    from stable_baselines3.common.env_util import make_vec_env

    from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv

    venv = make_vec_env("Pendulum-v1", n_envs=2, seed=0)
    model, _, _ = _model(venv.observation_space, venv.action_space, "Pendulum-v1")
    env = LearnedRewardVecEnv(venv, model.ensemble, None, env_id="Pendulum-v1",
                              renormalise_every=100, renormalise_steps=100)
    return env, model, model.ensemble.out_mean.clone()


def test_frozen_reward_is_renormalised_on_recent_steps():
    """A frozen model's output normalisation follows the agent's recent steps, as in a run."""
    env, model, before = _renormalised_pendulum()
    env.reset()
    rews = []
    for _ in range(50):  # 100 env steps: one refit, on exactly these steps
        _, r, _, infos = env.step(np.full((2, 1), 1.5, np.float32))
        rews.append(r)
    assert not torch.equal(model.ensemble.out_mean, before)
    obs = np.concatenate([o for o, _ in env._recent])
    acts = np.concatenate([a for _, a in env._recent])
    assert abs(float(model(obs, acts).mean())) < 1e-4


def test_a_resumed_wrapper_counts_on_from_its_checkpoint():
    """After ``resume_at(250)`` the step count, and so the next refit (at 300), go on from 250."""
    env, model, before = _renormalised_pendulum()
    env.resume_at(250)
    env.reset()
    for _ in range(24):  # to step 298: no refit yet
        env.step(np.full((2, 1), 1.5, np.float32))
    assert env.num_steps == 298 and torch.equal(model.ensemble.out_mean, before)
    env.step(np.full((2, 1), 1.5, np.float32))  # step 300: the refit a run never stopped makes
    assert not torch.equal(model.ensemble.out_mean, before)


def _pendulum_store(path, n_clips=120, seed=0):
    """A label store of a perfect teacher's answers on random-policy Pendulum clips."""
    from prefrl.oracles import SyntheticOracle
    from prefrl.rollouts import collect_clips
    from prefrl.types import ClipPair

    clips = collect_clips(gym.make("Pendulum-v1"), n_clips, 25, np.random.default_rng(seed))
    oracle = SyntheticOracle("perfect", rng=np.random.default_rng(seed + 1))
    with LabelStore(path) as store:
        for j in range(n_clips):
            pair = ClipPair(clips[j], clips[(j + 10) % n_clips])
            store.add_label(oracle.label(pair, query_id=store.add_query(pair, "random", 0.0)))
    return clips


def test_model_folder_carries_reference_clips_and_refuses_bad_ones(tmp_path):
    """Offline training stores a sample of its labelled clips; a bad reference file is refused."""
    clips = _pendulum_store(tmp_path / "labels.sqlite")
    model, _ = train_offline(tmp_path / "labels.sqlite", env="Pendulum", epochs=2)
    ref = model.reference
    assert ref is not None and len(ref) == 120 and ref.obs.shape == (120, 25, 3)
    by_hash = {c.hash: c for c in clips}
    with LabelStore(tmp_path / "labels.sqlite", create=False) as store:
        from prefrl.guard import labelled_sample

        first = by_hash[labelled_sample(store, 1)[0]]  # the guard's own sample, in its order
    assert np.array_equal(ref.obs[0], first.obs) and ref.true_return[0] == first.true_return
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    assert doc["reference"] == {"file": "reference.npz", "clips": 120}
    back = load_reward(tmp_path / "m", device="cpu")
    assert np.array_equal(back.reference.obs, ref.obs)
    assert np.array_equal(back.reference.true_return, ref.true_return)

    np.savez(tmp_path / "m" / "reference.npz", obs=ref.obs[:, :10], acts=ref.acts,
             true_return=ref.true_return)  # clips of the wrong length
    with pytest.raises(RewardModelError, match=r"reference clips .* do not fit the model: obs"):
        load_reward(tmp_path / "m", device="cpu")
    bad = ref.obs.copy()
    bad[0, 0, 0] = np.nan
    np.savez(tmp_path / "m" / "reference.npz", obs=bad, acts=ref.acts,
             true_return=ref.true_return)
    with pytest.raises(RewardModelError, match="NaN or infinite"):
        load_reward(tmp_path / "m", device="cpu")
    np.savez(tmp_path / "m" / "reference.npz", obs=ref.obs.astype(str), acts=ref.acts,
             true_return=ref.true_return)
    with pytest.raises(RewardModelError, match="obs has dtype"):
        load_reward(tmp_path / "m", device="cpu")
    (tmp_path / "m" / "reference.npz").write_bytes(b"not a zip")
    with pytest.raises(RewardModelError, match="cannot read reference clips"):
        load_reward(tmp_path / "m", device="cpu")


def test_a_run_on_a_frozen_model_gets_the_hacking_guard(tmp_path):
    """Frozen runs have no learner; the guard measures them against the model's reference."""
    from prefrl.rundir import MetricsLog
    from prefrl.training import train

    _pendulum_store(tmp_path / "labels.sqlite")
    model, _ = train_offline(tmp_path / "labels.sqlite", env="Pendulum", epochs=20)
    model.save(tmp_path / "m")
    res = train(TrainConfig(env="Pendulum", steps=6144, log_every=512, seed=0, n_envs=1,
                            progress=False, tensorboard=False, torch_threads=1,
                            reward_model=tmp_path / "m", reward_model_frozen=True,
                            run_dir=tmp_path / "frozen"))
    assert res.labels == 0
    rows = MetricsLog(tmp_path / "frozen" / "metrics.csv").read()
    ood = [float(r["hack_ood"]) for r in rows if r.get("hack_ood")]
    corr = [float(r["hack_corr"]) for r in rows if r.get("hack_corr")]
    assert ood and all(v > 0 for v in ood)  # measured against the 120 reference clips
    assert corr and all(-1 <= v <= 1 for v in corr)  # the env's reward is known
    assert "alarms" in json.loads((tmp_path / "frozen" / "result.json").read_text())
