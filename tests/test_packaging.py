"""The package installs like one: the wheel carries the presets; the envs are registered."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium
import pytest

import prefrl  # noqa: F401 - registers the prefrl/ envs
from prefrl.envs import FixedHorizon, list_presets, load_preset

ROOT = Path(__file__).resolve().parent.parent
LOAD_FROM_WHEEL = '''
import gymnasium, prefrl
from prefrl.presets import list_presets, load_preset, preset_dir
print(prefrl.__file__)
print(preset_dir())
print(load_preset("Hopper").env_id, len(list_presets()))
print(gymnasium.make("prefrl/Hopper-v0").spec.id)
'''


def test_wheel_carries_the_presets(tmp_path: Path) -> None:
    src = tmp_path / "src"  # a copy: building in place would leave build/ in the checkout
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("prefrl", "envs"):
        shutil.copytree(ROOT / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                        "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("prefrl-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(tmp_path / "unzipped")
    presets = sorted(p.name for p in (ROOT / "envs").glob("*.toml"))
    assert {f"prefrl/preset_files/{p}" for p in presets} <= names
    sources = {p.relative_to(ROOT).as_posix() for p in (ROOT / "prefrl").rglob("*.py")}
    assert sources <= names  # every subpackage is in the wheel
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "unzipped"), MUJOCO_GL="disable")
    env.pop("PREFRL_ENVS_DIR", None)
    r = subprocess.run([sys.executable, "-c", LOAD_FROM_WHEEL], capture_output=True, text=True,
                       cwd=tmp_path, env=env, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    module, folder, preset, gym_id = r.stdout.splitlines()
    assert Path(module).is_relative_to(tmp_path / "unzipped")
    assert Path(folder) == tmp_path / "unzipped" / "prefrl" / "preset_files"
    assert preset == f"Hopper-v5 {len(presets)}" and gym_id == "prefrl/Hopper-v0"


def test_a_checkout_reads_envs_in_place() -> None:
    if os.environ.get("PREFRL_ENVS_DIR"):
        pytest.skip("PREFRL_ENVS_DIR is set")
    assert load_preset("Hopper").path == ROOT / "envs" / "Hopper.toml"


def test_every_preset_is_a_registered_gymnasium_env() -> None:
    ids = sorted(k for k in gymnasium.registry if k.startswith("prefrl/"))
    assert ids == sorted(f"prefrl/{name}-v0" for name in list_presets())


def test_registered_env_is_the_fixed_horizon_env() -> None:
    preset = load_preset("Hopper")
    env = gymnasium.make("prefrl/Hopper-v0")
    wrappers = []
    e = env
    while isinstance(e, gymnasium.Wrapper):
        wrappers.append(e)
        e = e.env
    (fixed,) = [w for w in wrappers if isinstance(w, FixedHorizon)]
    assert fixed.horizon == preset.horizon
    assert fixed.termination_penalty == preset.termination_penalty
    assert not any(isinstance(w, gymnasium.wrappers.TimeLimit) for w in wrappers)
    assert env.spec is not None and env.spec.max_episode_steps is None
    env.reset(seed=0)
    env.step(env.action_space.sample())
    env.close()
