"""A run keeps the preset it ran with: editing or deleting envs/*.toml later changes nothing."""

import json

import pytest

from prefrl.config import ConfigError, TrainConfig, load_run_preset, resolve_run
from prefrl.envs import load_preset
from prefrl.presets import _preset_files, preset_from_json


@pytest.mark.parametrize("path", _preset_files(), ids=lambda p: p.stem)
def test_every_shipped_preset_survives_the_config_json_round_trip(path):
    preset = load_preset(path)
    stored = TrainConfig(env=str(path), reward="true", steps=10).resolve().to_json()["preset"]
    assert preset_from_json(json.loads(json.dumps(stored))) == preset


def test_a_run_resolves_with_its_stored_preset_after_the_file_changes(tmp_path):
    from prefrl.evaluate import evaluate_run
    from prefrl.training import train

    toml = tmp_path / "MyPendulum.toml"
    toml.write_text(load_preset("Pendulum").path.read_text())
    run = tmp_path / "run"
    train(TrainConfig(env=str(toml), reward="true", steps=1024, progress=False,
                      tensorboard=False, torch_threads=1, run_dir=run, seed=0))
    before = load_preset(toml)
    toml.write_text(toml.read_text().replace("horizon = 200", "horizon = 50"))
    assert load_preset(toml).horizon == 50 and before.horizon == 200
    assert resolve_run(run).preset == before == load_run_preset(run)
    toml.unlink()  # even without the file the run can be evaluated (and resumed)
    assert resolve_run(run, steps=2048).steps == 2048
    assert isinstance(evaluate_run(run, episodes=1, seed=0, deterministic=True), float)


def test_a_malformed_stored_preset_is_a_one_line_error(tmp_path):
    cfg = TrainConfig(env="Pendulum", reward="true", steps=10).resolve().to_json()
    cfg["preset"] = {**cfg["preset"], "horizon": 0}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="stored preset 'Pendulum' is malformed: .*horizon"):
        resolve_run(tmp_path)
    good = dict(cfg["preset"], horizon=200)
    for bad in ({"preference": 5}, {"algo_overrides": []}, {"algo_overrides": {"sac": 3}},
                {"preference": {"pool_clip": 50}},
                {"algo_overrides": {"sac": {"reward_val_frac": "none"}}}):
        cfg["preset"] = {**good, **bad}
        (tmp_path / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(ConfigError, match="stored preset 'Pendulum' is malformed: .*"
                           "(tables|pool_clip|reward_val_frac must be a float)"):
            resolve_run(tmp_path)
    cfg["preset"] = {k: v for k, v in good.items() if k != "env_id"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="malformed"):
        resolve_run(tmp_path)
    del cfg["preset"]  # configs without a stored preset load today's file, as before
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert resolve_run(tmp_path).preset == load_preset("Pendulum")
