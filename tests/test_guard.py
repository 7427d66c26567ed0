"""The reward-hacking guard: its statistics, alarms, response and budget, and a real run."""

import csv
import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
from ridge import ENV_ID, write_preset

from prefrl.config import ConfigError, TrainConfig
from prefrl.guard import GuardConfig, HackGuard, NewestPairs
from prefrl.guard_stats import Hysteresis, divergence, ood_ratio, rank_correlation, time_trend
from prefrl.learner import LearnerConfig, PreferenceLearner
from prefrl.reward import RewardEnsemble
from prefrl.rollouts import collect_clips
from prefrl.rundir import METRIC_COLUMNS
from prefrl.sb3.reward_wrapper import LearnedRewardVecEnv

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def ridge_clips(n, rng, policy=None, source_run="random"):
    env = gym.make(ENV_ID, max_episode_steps=50)
    return collect_clips(env, n, 10, rng, policy=policy, source_run=source_run)


POLICY_RNG = np.random.default_rng(0)


def right(_obs):
    """Runs past the ridge: x reaches ~3 in 50 steps."""
    return POLICY_RNG.uniform(0.2, 1.0, 1).astype(np.float32)


def stay(_obs):
    return POLICY_RNG.uniform(-1, 1, 1).astype(np.float32)


@pytest.fixture(scope="module")
def taught(tmp_path_factory):
    """A learner taught on random-policy clips only (x stays near 0)."""
    env = gym.make(ENV_ID, max_episode_steps=50)
    d = tmp_path_factory.mktemp("taught")
    learner = PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=120, total_steps=10_000, pretrain_frac=0.5, selector="random",
                      net_kwargs={"hidden": [32, 32]}),
        d / "labels.sqlite", oracle="perfect", clip_len=10, seed=0)
    learner.pretrain(ridge_clips(200, np.random.default_rng(0)))
    return learner


def with_agent_clips(learner, clips):
    for c in clips:
        learner.buffer.add_clip(c)
    return HackGuard(learner)


# ---------------------------------------------------------------------- statistics
def test_ood_ratio_rises_when_clips_leave_the_labelled_region(taught):
    rng = np.random.default_rng(1)
    inside = HackGuard(taught)
    for c in ridge_clips(60, rng, stay, source_run="agent"):
        taught.buffer.add_clip(c)
    at_home = inside.readings()["hack_ood"]
    for c in ridge_clips(100, rng, right, source_run="agent"):
        taught.buffer.add_clip(c)
    away = inside.readings()["hack_ood"]
    assert at_home is not None and away is not None
    assert at_home < 2.0  # the statistic is ~1 where the labels were
    assert away > GuardConfig().ood_trip and away > 2 * at_home


def test_ood_ratio_ignores_member_offsets_and_scales():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 50)) + 0.1 * rng.normal(size=(3, 50))
    far = 5 + rng.normal(size=(1, 20)) + 2.0 * rng.normal(size=(3, 20))
    shift = np.array([[3.0], [-7.0], [0.5]])
    scale = np.array([[1.0], [10.0], [0.2]])
    r = ood_ratio(far, base)
    assert r > 5
    assert ood_ratio(far * scale + shift, base * scale + shift) == pytest.approx(r)
    assert np.isnan(ood_ratio(far[:1], base[:1]))  # one member: no disagreement


def test_correlation_and_trend_statistics():
    rng = np.random.default_rng(0)
    t = np.arange(200.0)
    up = t + 20 * rng.normal(size=200)
    down = -t + 20 * rng.normal(size=200)
    assert time_trend(t, up) > 0.8 and time_trend(t, down) < -0.8
    assert abs(time_trend(t, rng.normal(size=200))) < 0.3
    assert np.isnan(time_trend(t, np.ones(200)))
    assert divergence(time_trend(t, up), time_trend(t, down)) > 0.8  # learned up, true down
    assert divergence(time_trend(t, up), time_trend(t, up)) < 0  # both rise: healthy
    x = rng.normal(size=100)
    assert rank_correlation(x, np.exp(x)) == pytest.approx(1.0)
    assert rank_correlation(x, -x) == pytest.approx(-1.0)
    assert np.isnan(rank_correlation(x, np.zeros(100)))


def test_readings_see_the_exploit_with_a_synthetic_teacher(tmp_path):
    env = gym.make(ENV_ID, max_episode_steps=50)
    learner = PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=60, total_steps=10_000, selector="random",
                      net_kwargs={"hidden": [32, 32]}),
        tmp_path / "labels.sqlite", oracle="perfect", clip_len=10, seed=0)
    rng = np.random.default_rng(2)
    learner.pretrain(ridge_clips(200, rng))
    # the agent runs further right over time: learned return rises, true return falls
    drifting = []
    for k, push in enumerate(np.linspace(-0.5, 0.9, 10)):
        def policy(_obs, push=push):
            return np.clip(push + 0.1 * POLICY_RNG.normal(size=1), -1, 1).astype(np.float32)
        drifting += [dataclasses.replace(c, step=1000 * k + c.step)
                     for c in ridge_clips(20, rng, policy, source_run="agent")]
    guard = with_agent_clips(learner, drifting)
    r = guard.readings()
    assert r["hack_corr"] is not None and r["hack_corr"] < 0
    assert r["hack_trend_learned"] > 0 > r["hack_trend_true"] and r["hack_trend"] > 0.3


# ---------------------------------------------------------------------- alarms
def test_hysteresis_does_not_flap():
    h = Hysteresis(3.0, 2.0, above=True, min_rows=3)
    events = [h.update(v) for v in [4, 4, 1, 4, 4, 1, 4, 4, float("nan"), 4]]
    assert events.count("trip") == 1 and events[-1] == "trip"  # 3 in a row (NaN skipped)
    assert [h.update(v) for v in [2.5, 2.5, 2.5, 1, 1, 4, 1]] == [None] * 7  # not yet back
    assert h.update(1) is None and h.update(1) == "clear" and not h.active
    low = Hysteresis(0.0, 0.3, above=False, min_rows=1)
    assert low.update(-0.1) == "trip" and low.update(0.2) is None and low.update(0.5) == "clear"
    with pytest.raises(ValueError, match="clear threshold"):
        Hysteresis(3.0, 4.0, above=True, min_rows=1)


def test_guard_state_round_trips(taught):
    g = HackGuard(taught)
    g.kinds["ood"].active, g.kinds["corr"].count = True, 2
    g.alarms.append({"step": 10, "kind": "ood", "value": 4.0, "threshold": 3.0})
    g2 = HackGuard(taught)
    g2.load_state_dict(json.loads(json.dumps(g.state_dict())))
    assert g2.alarms == g.alarms and g2.active() == ["ood"] and g2.kinds["corr"].count == 2


def test_a_resumed_callback_gets_the_guard_state_of_its_checkpoint(taught, tmp_path):
    from prefrl.rundir import MetricsLog
    from prefrl.sb3.callback import PreferenceCallback

    saved = []
    g = HackGuard(taught)
    g.kinds["corr"].active = True
    g.alarms.append({"step": 7, "kind": "corr", "value": -0.5, "threshold": 0.0})
    kw = {"learner": taught, "reward_env": None, "metrics": MetricsLog(tmp_path / "m.csv"),
          "total_steps": 100, "update_every": 10, "log_every": 10, "checkpoint_every": 10,
          "save_checkpoint": lambda st: saved.append(json.loads(json.dumps(st)))}
    cb = PreferenceCallback(state={}, guard=g, **kw)
    cb.checkpoint()
    resumed = PreferenceCallback(state=saved[-1], guard=HackGuard(taught), **kw)
    assert resumed.guard.alarms == g.alarms and resumed.guard.active() == ["corr"]


# ---------------------------------------------------------------------- response
def test_asking_borrows_from_the_schedule_and_keeps_the_budget(tmp_path):
    env = gym.make(ENV_ID, max_episode_steps=50)
    learner = PreferenceLearner.create(
        env.observation_space, env.action_space,
        LearnerConfig(labels=40, total_steps=10_000, pretrain_frac=0.5,
                      net_kwargs={"hidden": [16]}),
        tmp_path / "labels.sqlite", oracle="perfect", clip_len=10, seed=0)
    rng = np.random.default_rng(3)
    learner.pretrain(ridge_clips(100, rng))
    newest = ridge_clips(30, rng, right, source_run="agent")
    guard = with_agent_clips(learner, newest)
    assert learner.store.n_queries() == 20
    guard.kinds["ood"].active = True
    asked = guard.respond(1000, tripped=[{"kind": "ood"}])
    assert asked == guard.config.ask_min and learner.store.n_queries() == 25
    hashes = {c.hash for c in newest}
    for q in learner.store.queries()[20:]:
        assert q.pair_key.split(":")[0] in hashes or q.pair_key.split(":")[1] in hashes
    assert learner.schedule.due(1000, 25) == 0  # borrowed: the schedule waits to catch up
    for step in range(1000, 10_001, 500):  # responses all along cannot overspend
        learner.ask(step)
        guard.respond(step, tripped=[{"kind": "ood"}])
    assert learner.store.n_queries() == 40 == learner.schedule.total
    keys = [q.pair_key for q in learner.store.queries()]
    assert len(keys) == len(set(keys))
    assert guard.labels_to_bring_forward(10_000) == 0


def test_newest_pairs_always_hold_a_newest_clip():
    rng = np.random.default_rng(0)
    old, new = ridge_clips(20, rng), ridge_clips(5, rng, right, source_run="agent")
    src = NewestPairs(new, old + new)
    pairs = src.sample_pairs(30, np.random.default_rng(1))
    newest = {c.hash for c in new}
    assert len({p.key for p in pairs}) == len(pairs) == 30
    assert all(p.left.hash in newest or p.right.hash in newest for p in pairs)
    assert not src.sample_pairs(10, np.random.default_rng(1), exclude_keys={p.key for p in pairs}
                                ) == pairs[:10]


def test_reward_pessimism_pays_mean_minus_k_std():
    from stable_baselines3.common.vec_env import DummyVecEnv

    venv = DummyVecEnv([lambda: gym.make(ENV_ID, max_episode_steps=50)] * 2)
    ens = RewardEnsemble.from_spaces(venv.observation_space, venv.action_space, device="cpu")
    env = LearnedRewardVecEnv(venv, ens, None, env_id=ENV_ID, pessimism=2.0)
    obs = env.reset()
    acts = np.ones((2, 1), np.float32)
    mean, std = ens.predict(obs, acts)
    env.step_async(acts)
    _, rew, _, infos = env.step_wait()
    assert (std > 0).all()
    np.testing.assert_allclose(rew, mean - 2.0 * std, atol=1e-5)
    assert infos[0]["learned_reward"] == pytest.approx(float(rew[0]))
    with pytest.raises(ValueError, match="pessimism"):
        LearnedRewardVecEnv(venv, ens, None, env_id=ENV_ID, pessimism=-1)


def test_config_checks_the_guard_options():
    with pytest.raises(ConfigError, match="--reward-pessimism"):
        TrainConfig(env="Pendulum", reward_pessimism=-0.5).resolve()
    with pytest.raises(ConfigError, match="--on-hack"):
        TrainConfig(env="Pendulum", on_hack="panic").resolve()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_hack"):
        GuardConfig(on_hack="panic")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- real runs
def ridge_run(tmp_path, on_hack, **kw):
    from prefrl.training import train

    run = tmp_path / on_hack
    tmp_path.mkdir(parents=True, exist_ok=True)
    res = train(TrainConfig(env=str(write_preset(tmp_path)), on_hack=on_hack, seed=0,
                            progress=False, tensorboard=False, torch_threads=1, run_dir=run,
                            pretrain_clips=100, pretrain_epochs=50, update_epochs=5, **kw))
    with (run / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    return res, rows, run


def test_guard_columns_fill_in_both_reward_training_modes(tmp_path):
    for mode in ("inline", "background"):
        res, rows, run = ridge_run(tmp_path / mode, "ask", steps=3072, labels=24,
                                   reward_training=mode)
        assert list(rows[0]) == METRIC_COLUMNS
        assert any(r["hack_ood"] for r in rows) and any(r["hack_corr"] for r in rows)
        assert res.labels == 24
        doc = json.loads((run / "result.json").read_text())
        state = json.loads((run / "checkpoint" / "state.json").read_text())
        assert doc["alarms"] == state["guard"]["alarms"] == res.alarms


@pytest.mark.slow
def test_alarm_trips_on_the_exploit_and_asking_recovers_true_return(tmp_path):
    """Ridge, 20k steps: the agent runs past the ridge within ~4k steps either way; asking
    about its clips teaches the model the ridge and the agent comes back (measured: final true
    return 38.8 with ask, -281.9 with none; ~40 s per run on an idle core)."""
    kw = {"labels": 200, "pretrain_frac": 0.5, "oracle": "perfect"}
    ask, ask_rows, _ = ridge_run(tmp_path, "ask", **kw)
    none, none_rows, _ = ridge_run(tmp_path, "none", **kw)
    for res in (ask, none):
        assert {"corr", "divergence"} <= {a["kind"] for a in res.alarms}
        assert res.labels == 200  # the budget, exactly, either way
    assert "ood" in {a["kind"] for a in none.alarms}
    assert ask.true_return > 0 > none.true_return
    assert ask.true_return > none.true_return + 100
    assert not ask_rows[-1]["hack_alarm"] and none_rows[-1]["hack_alarm"]


def test_reading_summary_of_a_metrics_log():
    from prefrl.guard import main, reading_summary

    rows = [{"step": "10", "hack_ood": "1.5", "hack_corr": "0.9", "hack_trend": "",
             "hack_alarm": ""},
            {"step": "20", "hack_ood": "4", "hack_corr": "-0.2", "hack_trend": "0.4",
             "hack_alarm": "ood+corr"}]
    s = reading_summary(rows)
    assert s["hack_ood_max"] == 4 and s["hack_corr_min"] == -0.2 and s["hack_trend_max"] == 0.4
    assert s["alarm_rows"] == 1 and s["first_alarm_step"] == 20
    assert main(["/nonexistent-run"]) == 2


@pytest.mark.slow
def test_alarm_stays_quiet_on_a_normal_halfcheetah_run(tmp_path):
    """A short healthy run (50k steps, 150 labels): no alarm. The lead's benchmark runs check
    full-length runs with ``python -m prefrl.guard RUN_DIR``."""
    from prefrl.training import train

    res = train(TrainConfig(env="HalfCheetah", steps=50_000, labels=150, seed=0,
                            progress=False, tensorboard=False, torch_threads=1,
                            run_dir=tmp_path / "cheetah"))
    assert res.alarms == []
