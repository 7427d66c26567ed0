"""The standard-env evaluation tells a fall inside the training horizon from one past it."""

from prefrl.config import TrainConfig
from prefrl.envs import load_preset


def _briefly_trained(tmp_path, preset: str, name: str, edits: dict[str, str]):
    """A 256-step true-reward run on a copy of ``preset`` with each ``old -> new`` text edit."""
    from prefrl.training import train

    text = load_preset(preset).path.read_text()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    toml = tmp_path / f"{name}.toml"
    toml.write_text(text)
    run = tmp_path / name
    train(TrainConfig(env=str(toml), reward="true", steps=256, progress=False,
                      tensorboard=False, torch_threads=1, run_dir=run, seed=0))
    return run


def _pendulum(tmp_path, horizon: int, clip_len: int):
    return _briefly_trained(tmp_path, "InvertedPendulum", f"IP{horizon}", {
        "horizon = 100": f"horizon = {horizon}", "clip_len = 38": f"clip_len = {clip_len}"})


def test_falls_within_the_training_horizon_are_counted_apart(tmp_path):
    from prefrl.evaluate import evaluate_standard

    # a barely trained pendulum falls within ~10 steps of the standard env, never within 2
    long = evaluate_standard(_pendulum(tmp_path, 100, 38), episodes=3, seed=0)
    short = evaluate_standard(_pendulum(tmp_path, 2, 2), episodes=3, seed=0)
    for ev in (long, short):
        assert ev is not None and ev["falls"] == 3 and len(ev["lengths"]) == 3
        assert all(2 < n < 100 for n in ev["lengths"]) and ev["length"] == sum(ev["lengths"]) / 3
    assert long["horizon"] == 100 and long["falls_within_horizon"] == 3
    assert short["horizon"] == 2 and short["falls_within_horizon"] == 0


def test_the_standard_env_keeps_the_presets_observation_but_its_own_termination(tmp_path):
    from prefrl.evaluate import evaluate_standard

    old = "env_kwargs = { terminate_when_unhealthy = false }"
    run = _briefly_trained(tmp_path, "Hopper", "HopperX", {  # 12-dim observations, not 11
        old: "env_kwargs = { terminate_when_unhealthy = false, "
             "exclude_current_positions_from_observation = false }"})
    ev = evaluate_standard(run, episodes=2, seed=0)
    assert ev is not None and ev["falls"] == 2  # a barely trained hopper falls, and it ends there
    assert all(n < 200 for n in ev["lengths"])
