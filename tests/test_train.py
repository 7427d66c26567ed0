"""End-to-end: a tiny real run, kill -9 and resume, the CLI's error handling, export."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from killing import kill_after_checkpoint

from prefrl.config import ConfigError, TrainConfig
from prefrl.rundir import load_npz
from prefrl.store import LabelStore

PY = sys.executable
TINY = ["--env", "Pendulum", "--steps", "6000", "--labels", "30", "--pretrain-clips", "40",
        "--pretrain-epochs", "5", "--update-epochs", "2", "--no-progress", "--no-tensorboard",
        "--torch-threads", "1", "--n-envs", "1"]


def cli(*args, timeout=300):
    return subprocess.run([PY, "-m", "prefrl.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def _children_cpu():
    """CPU seconds (user + system) of this process's finished children."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def metrics(run):
    with (run / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_tiny_run_writes_a_complete_run_directory(tmp_path):
    from prefrl.training import train

    run = tmp_path / "run"
    res = train(TrainConfig(env="Pendulum", steps=4096, labels=20, pretrain_clips=30,
                            pretrain_epochs=5, update_epochs=2, progress=False, tensorboard=False,
                            torch_threads=1, run_dir=run, seed=3))
    assert res.steps == 4096 and res.labels == 20
    assert res.reward_val_acc is not None and res.corr_spearman is not None
    for f in ("config.json", "labels.sqlite", "metrics.csv", "result.json",
              "checkpoint/policy.zip", "checkpoint/learner.pt", "checkpoint/buffer.npz",
              "checkpoint/state.json"):
        assert (run / f).exists(), f
    rows = metrics(run)
    assert rows and rows[-1]["step"] == "4096" and rows[-1]["labels"] == "20"
    # the time of every part of the preference side is counted, in rows and in result.json
    assert float(rows[-1]["reward_fit_s"]) > 0 and float(rows[-1]["query_score_s"]) > 0
    assert float(rows[-1]["record_s"]) > 0 and float(rows[-1]["pretrain_collect_s"]) > 0
    timers = json.loads((run / "result.json").read_text())["timers"]
    assert timers["pretrain_s"] > 0 and timers["label_sync_s"] > 0
    assert timers["guard_s"] > 0 and timers["checkpoint_s"] > 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["resolved"]["env_id"] == "Pendulum-v1" and cfg["provenance"]["git_commit"] != ""
    with LabelStore(run / "labels.sqlite") as store:
        keys = [q.pair_key for q in store.queries()]
        assert len(keys) == len(set(keys)) == 20


def test_background_reward_training_run(tmp_path):
    """Reward training in a thread: the run completes, metrics carry memory readings."""
    from prefrl.training import train

    run = tmp_path / "bg"
    res = train(TrainConfig(env="Pendulum", steps=4096, labels=20, pretrain_clips=30,
                            pretrain_epochs=5, update_epochs=2, progress=False, tensorboard=False,
                            torch_threads=1, run_dir=run, seed=3, reward_training="background",
                            update_every=512))
    assert res.labels == 20 and res.reward_val_acc is not None
    rows = metrics(run)
    assert all(float(r["rss_mb"]) > 50 and float(r["pool_mb"]) > 0 for r in rows)
    assert float(rows[-1]["reward_data_mb"]) > 0
    state = json.loads((run / "config.json").read_text())
    assert state["resolved"]["background_reward"] is True


def test_true_reward_baseline_uses_the_same_pipeline(tmp_path):
    from prefrl.training import train

    res = train(TrainConfig(env="Pendulum", steps=2048, reward="true", progress=False,
                            tensorboard=False, torch_threads=1, run_dir=tmp_path / "t"))
    assert res.labels == 0 and res.learned_return is None and res.true_return < 0
    assert not (tmp_path / "t" / "labels.sqlite").exists()


@pytest.mark.parametrize("mode", ["inline", "background"])
def test_killed_run_resumes_without_losing_or_repeating_labels(tmp_path, mode):
    run = tmp_path / "run"
    proc = subprocess.Popen([PY, "-m", "prefrl.cli", "train", *TINY, "--run-dir", str(run),
                             "--checkpoint-every", "1024", "--reward-training", mode],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    state_at_kill = kill_after_checkpoint(proc, run, 2048)
    with LabelStore(run / "labels.sqlite") as store:
        labels_at_kill = store.n_labels()
    assert 0 < labels_at_kill < 30
    rows_at_kill = len(metrics(run))

    # a second process may not drive the same run at the same time, nor start over it
    again = cli("train", *TINY, "--run-dir", str(run))
    assert again.returncode == 2 and "--resume" in again.stderr

    cpu_before = _children_cpu()
    res = cli("train", "--resume", str(run))
    resumed_cpu = _children_cpu() - cpu_before
    assert res.returncode == 0, res.stderr
    # the run's CPU time adds the resumed segment to the checkpoint's, as its wall time does
    cpu = json.loads((run / "result.json").read_text())["cpu_s"]
    assert 0 < state_at_kill["cpu_s"] < cpu < state_at_kill["cpu_s"] + resumed_cpu
    with LabelStore(run / "labels.sqlite") as store:
        keys = [q.pair_key for q in store.queries()]
        assert store.n_labels() == 30  # the budget, exactly
        assert len(keys) == len(set(keys)) == 30  # no pair asked twice
    steps = [int(r["step"]) for r in metrics(run)]
    assert steps == sorted(set(steps)) and steps[-1] == 6144  # the curve continues, no repeats
    assert len(steps) >= rows_at_kill - 2
    assert json.loads((run / "result.json").read_text())["labels"] == 30
    # clips recorded after the resume carry the run's own step, not one counted from the resume
    pool = load_npz(run / "checkpoint" / "buffer.npz")  # oldest first
    clip_steps = [int(step) for step, source in zip(pool["steps"], pool["source_runs"],
                  strict=True) if not str(source).endswith(":random")]  # the agent's clips
    assert clip_steps == sorted(clip_steps) and clip_steps[-1] > 6144 - 500


@pytest.mark.parametrize("args,message", [
    (["--env", "Atlantis9000"], "unknown env 'Atlantis9000'; known: Ant"),
    (["--labels", "1"], "too few to learn"),
    (["--oracle", "psychic"], "unknown oracle 'psychic'"),
    (["--steps", "50", "--labels", "100000", "--pretrain-clips", "3"], "impossible"),
    (["--env", "Pong", "--selector", "kcenter-disagreement"], "needs vector observations"),
])
def test_cli_user_errors_are_one_line_without_traceback(args, message, tmp_path):
    r = cli("train", *args, "--run-dir", str(tmp_path / "x"))
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0


def test_resume_of_a_directory_that_is_not_a_run(tmp_path):
    r = cli("train", "--resume", str(tmp_path))
    assert r.returncode == 2 and "not a prefrl run directory" in r.stderr
    (tmp_path / "config.json").write_text("{broken")
    r = cli("train", "--resume", str(tmp_path))
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


def test_corrupt_label_store_is_a_clear_error(tmp_path):
    from prefrl.training import train

    run = tmp_path / "run"
    train(TrainConfig(env="Pendulum", steps=1024, labels=10, pretrain_clips=20,
                      pretrain_epochs=2, progress=False, tensorboard=False, run_dir=run))
    (run / "labels.sqlite").write_bytes(b"this is not sqlite at all" * 100)
    for f in run.glob("labels.sqlite-*"):
        f.unlink()
    r = cli("train", "--resume", str(run))
    assert r.returncode == 2 and "labels.sqlite" in r.stderr and "Traceback" not in r.stderr
    r = cli("export", str(run))
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_export_writes_portable_files(tmp_path):
    from prefrl.training import train

    run = tmp_path / "run"
    train(TrainConfig(env="Pendulum", steps=1024, labels=10, pretrain_clips=20,
                      pretrain_epochs=2, progress=False, tensorboard=False, run_dir=run))
    r = cli("export", str(run), "--out", str(tmp_path / "exp"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "exp" / "labels.jsonl").exists()
    assert (tmp_path / "exp" / "clips.npz").exists()


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="pretrain-frac"):
        TrainConfig(pretrain_frac=2.0).resolve()
    assert TrainConfig(env="halfcheetah").resolve().env_id == "HalfCheetah-v5"


@pytest.mark.parametrize("key, default, other, bad, error", [
    ("reward_schedule", "fast", "full", "slow", "reward_schedule must be fast or full"),
    ("reward_norm", "recent", "labelled", "everything", "reward_norm must be recent or labelled"),
    ("reward_l2", "adaptive", "off", "none", "reward_l2 must be adaptive or off"),
])
def test_preference_setting_comes_from_the_preset_unless_given(tmp_path, key, default, other,
                                                               bad, error):
    base = (Path(__file__).parents[1] / "envs" / "Pendulum.toml").read_text()
    preset = tmp_path / "PendulumOther.toml"
    preset.write_text(base + f'\n[preference]\n{key} = "{other}"\n')
    assert getattr(TrainConfig(env="Pendulum").resolve(), key) == default
    assert getattr(TrainConfig(env=str(preset)).resolve(), key) == other
    assert getattr(TrainConfig(env=str(preset), **{key: default}).resolve(), key) == default
    assert TrainConfig(env=str(preset)).resolve().to_json()["resolved"][key] == other
    wrong = tmp_path / "PendulumBad.toml"
    wrong.write_text(base + f'\n[preference]\n{key} = "{bad}"\n')
    with pytest.raises(ConfigError, match=error):
        TrainConfig(env=str(wrong)).resolve()


def test_reward_l2_off_trains_without_weight_decay(tmp_path):
    from prefrl.training import train

    runs = {}
    for l2 in ("adaptive", "off"):
        train(TrainConfig(env="Pendulum", steps=2048, labels=20, pretrain_clips=30,
                          pretrain_epochs=5, update_epochs=2, progress=False, tensorboard=False,
                          torch_threads=1, run_dir=tmp_path / l2, seed=3, reward_l2=l2,
                          update_every=512))
        runs[l2] = [float(r["reward_l2"]) for r in metrics(tmp_path / l2) if r["reward_l2"]]
    assert runs["off"] and all(v == 0.0 for v in runs["off"])
    assert runs["adaptive"] and all(v > 0.0 for v in runs["adaptive"])


def test_reward_val_frac_zero_trains_on_every_label(tmp_path):
    from prefrl.training import train

    for bad in ({}, {"reward_l2": "off"}, {"reward_schedule": "full"}):
        with pytest.raises(ConfigError, match="--reward-val-frac 0 holds no labels out"):
            TrainConfig(env="Pendulum", reward_val_frac=0.0, **bad).resolve()
    base = (Path(__file__).parents[1] / "envs" / "Pendulum.toml").read_text()
    for key, bad in (("reward_val_frac", '"x"'), ("pool_clips", "2.5"), ("oversample", "true")):
        wrong = tmp_path / f"Pendulum-{key}.toml"
        wrong.write_text(base + f"\n[preference]\n{key} = {bad}\n")
        with pytest.raises(ConfigError, match=f"\\[preference\\] {key} must be a"):
            TrainConfig(env=str(wrong)).resolve()
    with pytest.raises(ConfigError, match="reward-val-frac must be in"):
        TrainConfig(env="Pendulum", reward_val_frac=1.0).resolve()
    assert TrainConfig(env="Pendulum").resolve().reward_val_frac == pytest.approx(0.36788, abs=1e-5)
    run = tmp_path / "all"
    train(TrainConfig(env="Pendulum", steps=2048, labels=20, pretrain_clips=30,
                      pretrain_epochs=5, update_epochs=2, progress=False, tensorboard=False,
                      torch_threads=1, run_dir=run, seed=3, reward_l2="off",
                      reward_schedule="full", reward_val_frac=0.0, update_every=512))
    rows = [r for r in metrics(run) if r["reward_train_acc"]]
    assert rows and all(r["reward_val_acc"] in ("", "nan") for r in rows)
    assert json.loads((run / "config.json").read_text())["resolved"]["reward_val_frac"] == 0.0


def test_an_algorithm_table_sets_preference_keys_for_that_algorithms_runs(tmp_path):
    """[sac] reward_schedule beats [preference]'s for SAC runs only; the CLI beats both."""
    from prefrl.presets import load_preset, preset_from_json

    base = "\n".join(line for line in (Path(__file__).parents[1] / "envs" / "Pendulum.toml")
                     .read_text().splitlines() if not line.startswith("reward_")) + "\n"
    preset = tmp_path / "PendulumSacAll.toml"
    preset.write_text(base.replace("[sac]\n", '[sac]\nreward_schedule = "full"\n'
                                   'reward_l2 = "off"\nreward_val_frac = 0\n')
                      + '\n[preference]\nreward_schedule = "fast"\npool_clips = 500\n')
    sac = TrainConfig(env=str(preset), algo="sac").resolve()
    assert (sac.reward_schedule, sac.reward_l2, sac.reward_val_frac, sac.pool_clips) == (
        "full", "off", 0, 500)
    ppo = TrainConfig(env=str(preset), algo="ppo").resolve()
    assert (ppo.reward_schedule, ppo.reward_l2, ppo.pool_clips) == ("fast", "adaptive", 500)
    assert TrainConfig(env=str(preset), algo="sac", reward_val_frac=0.25, reward_l2="adaptive",
                       reward_schedule="fast").resolve().reward_val_frac == 0.25
    with pytest.raises(ConfigError, match="--reward-val-frac 0 holds no labels out"):
        TrainConfig(env=str(preset), algo="sac", reward_schedule="fast").resolve()
    # an algorithm table's preference keys are type-checked like [preference]'s, and a run
    # keeps them in its stored preset
    wrong = tmp_path / "PendulumSacBad.toml"
    wrong.write_text(base.replace("[sac]\n", '[sac]\nreward_val_frac = "none"\n'))
    with pytest.raises(ConfigError, match="\\[sac\\] reward_val_frac must be a float"):
        TrainConfig(env=str(wrong), algo="sac").resolve()
    stored = TrainConfig(env=str(preset), algo="sac").resolve().to_json()["preset"]
    assert preset_from_json(stored).algo_overrides["sac"]["reward_schedule"] == "full"
    with pytest.raises(ValueError, match="unknown \\[preference\\] key 'pool_clip'"):
        preset_from_json({**stored, "preference": {"pool_clip": 50}})
    assert "reward_schedule" not in load_preset("Pendulum").algo_overrides.get("ppo", {})


def test_preset_preference_keys_are_checked_and_pool_clips_bounds_the_pool(tmp_path):
    from prefrl.training import train

    base = (Path(__file__).parents[1] / "envs" / "Pendulum.toml").read_text()
    typo = tmp_path / "PendulumTypo.toml"
    typo.write_text(base + '\n[preference]\npool_clip = 50\n')
    with pytest.raises(ConfigError, match="unknown \\[preference\\] key 'pool_clip'"):
        TrainConfig(env=str(typo)).resolve()
    small = tmp_path / "PendulumSmallPool.toml"
    small.write_text(base + '\n[preference]\npool_clips = 30\n')
    assert TrainConfig(env=str(small)).resolve().pool_clips == 30
    assert TrainConfig(env="Pendulum").resolve().pool_clips == 3000
    with pytest.raises(ConfigError, match="pool-clips must be >= 2"):
        TrainConfig(env="Pendulum", pool_clips=1).resolve()
    # 2048 steps cut into 41 windows of 2 x 25 steps, plus 40 pre-training clips: the pool keeps
    # the newest 30, so every query of the last update is about the agent's latest behaviour
    res = train(TrainConfig(env=str(small), steps=2048, labels=20, pretrain_clips=40,
                            pretrain_epochs=2, update_epochs=1, progress=False,
                            run_dir=tmp_path / "run"))
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfg["resolved"]["pool_clips"] == 30
    store = LabelStore(tmp_path / "run" / "labels.sqlite", create=False)
    late = [q for q in store.queries() if q.env_step > 1500]
    assert late and res.labels == 20
    oldest_kept = 2048 - 30 * 2 * 25 - 2 * 2 * 25  # 30 windows back, with slack for rollout ends
    steps = [c.step for q in late for c in store.get_clips([q.left, q.right], render_state=False)]
    assert min(steps) >= oldest_kept


def test_help_explains_every_option():
    r = cli("train", "--help")
    assert r.returncode == 0
    from dataclasses import fields

    for f in fields(TrainConfig):
        assert "--" + f.name.replace("_", "-") in r.stdout, f.name


@pytest.mark.parametrize("algo", ["a2c", "trpo"])
def test_other_algorithms_run_the_same_loop(algo, tmp_path):
    from prefrl.training import train

    res = train(TrainConfig(env="Pendulum", algo=algo, steps=2048, labels=12, pretrain_clips=20,
                            pretrain_epochs=2, update_epochs=1, progress=False,
                            tensorboard=False, torch_threads=1, run_dir=tmp_path / algo))
    assert res.algo == algo and res.labels == 12 and res.steps >= 2048
