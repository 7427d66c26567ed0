"""Clip -> frames -> cached video, for MuJoCo, Pendulum and pixel clips."""

from __future__ import annotations

import ctypes.util
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

if "mujoco" not in sys.modules:  # the GL backend is chosen when MuJoCo is first imported
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    if os.environ["MUJOCO_GL"] == "osmesa":
        os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg not installed")

from prefrl.envs import load_preset, make_env  # noqa: E402
from prefrl.gui import render as render_mod  # noqa: E402
from prefrl.gui.render import MAX_FPS, clip_frames, pixel_frames  # noqa: E402
from prefrl.gui.video import VideoCache, encode_video  # noqa: E402
from prefrl.rollouts import collect_clips  # noqa: E402
from prefrl.types import Clip  # noqa: E402


def n_frames(path: Path) -> int:
    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def need_osmesa() -> None:
    if os.environ.get("MUJOCO_GL") == "osmesa" and ctypes.util.find_library("OSMesa") is None:
        pytest.skip("OSMesa is not installed (apt-get install libosmesa6): no MuJoCo rendering")


def check_cached(tmp_path: Path, clip: Clip, expect_frames: int, fmt: str = "mp4") -> None:
    cache = VideoCache(tmp_path / "gui_cache")
    try:
        path = cache.get(clip, fmt, timeout=120)
        assert path == tmp_path / "gui_cache" / f"{clip.hash}.{fmt}" and path.stat().st_size > 0
        stamp = path.stat().st_mtime_ns
        assert cache.get(clip, fmt) == path and cache.n_encoded == 1  # second call: cached
        assert path.stat().st_mtime_ns == stamp
        assert n_frames(path) == expect_frames
        assert not list(path.parent.glob(".*tmp*"))  # no temporary files left behind
    finally:
        cache.close()
    again = VideoCache(tmp_path / "gui_cache")  # a new server finds it on disk
    try:
        assert again.get(clip, fmt) == path and again.n_encoded == 0
    finally:
        again.close()


@pytest.mark.parametrize("name", ["Reacher", "HalfCheetah"])
def test_mujoco_clip(tmp_path: Path, name: str) -> None:
    need_osmesa()
    preset = load_preset(name)
    clip = collect_clips(make_env(preset, seed=0), 1, preset.clip_len, np.random.default_rng(0))[0]
    assert {"qpos", "qvel"} <= set(clip.render_state)
    frames, fps = clip_frames(clip, size=96)
    stride = max(1, math.ceil(1 / (preset.dt or 0.05) / MAX_FPS - 1e-9))
    assert frames.shape == (math.ceil(clip.length / stride), 96, 96, 3)
    assert fps == pytest.approx(1 / preset.dt / stride)
    assert frames.std() > 5 and np.abs(frames[0].astype(int) - frames[-1]).sum() > 0  # moving
    check_cached(tmp_path, clip, len(frames))


def test_high_rate_envs_show_every_kth_step(tmp_path: Path) -> None:
    need_osmesa()
    preset = load_preset("Hopper")  # 125 steps per second
    clip = collect_clips(make_env(preset, seed=0), 1, 30, np.random.default_rng(0))[0]
    frames, fps = clip_frames(clip, size=64)
    assert len(frames) == 10 and fps == pytest.approx(125 / 3) and fps <= MAX_FPS


def pendulum_clip(thetas: np.ndarray) -> Clip:
    obs = np.stack([np.cos(thetas), np.sin(thetas), np.zeros_like(thetas)], 1).astype(np.float32)
    return Clip(obs=obs, acts=np.zeros((len(thetas), 1), np.float32),
                true_rews=-np.abs(thetas).astype(np.float32), env_id="Pendulum-v1")


@pytest.mark.parametrize("drawer", ["default", "numpy"])
def test_pendulum_clip(tmp_path: Path, monkeypatch, drawer: str) -> None:
    if drawer == "numpy":  # as without pygame
        monkeypatch.setitem(sys.modules, "pygame", None)
        monkeypatch.setattr(render_mod._local, "scenes", {}, raising=False)
    thetas = np.array([0.0, np.pi / 2, np.pi, -np.pi / 2] * 3)
    frames, fps = clip_frames(pendulum_clip(thetas), size=220)
    assert frames.shape == (12, 220, 220, 3) and fps == pytest.approx(20.0)
    c, r = 110, 0.8 * 220 / 4.4  # a point on the rod, 0.8 of its length from the axle
    for f, th in zip(frames, thetas, strict=True):
        x, y = int(round(c - r * math.sin(th))), int(round(c - r * math.cos(th)))
        red, green, blue = f[y, x].astype(int)
        assert red > 150 and green < 120 and blue < 120, (th, f[y, x])  # the red rod
        opp = f[int(round(2 * c - y)), int(round(2 * c - x))]
        assert opp.min() > 200  # nothing opposite it: white
    live = make_env(load_preset("Pendulum"), seed=1)
    clip = collect_clips(live, 1, 25, np.random.default_rng(1))[0]
    check_cached(tmp_path, clip, 25)


def test_pixel_clips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stacked = rng.integers(0, 50, (20, 84, 84, 4), dtype=np.uint8)
    stacked[..., -1] = 200  # the newest frame of each stack
    frames = pixel_frames(stacked)
    assert frames.shape == (20, 84, 84, 3) and (frames == 200).all()
    chw = np.moveaxis(stacked, -1, 1)  # channels first, as after VecTransposeImage
    assert (pixel_frames(chw) == 200).all()
    rgb = rng.integers(0, 255, (20, 60, 40, 6), dtype=np.uint8)  # two stacked RGB frames
    assert np.array_equal(pixel_frames(rgb), rgb[..., 3:])
    clip = Clip(obs=stacked, acts=np.zeros((20, 1), np.int64), true_rews=np.zeros(20),
                env_id="ALE/Pong-v5")
    big, fps = clip_frames(clip, size=240)
    assert big.shape == (20, 252, 252, 3) and fps == 15.0  # integer upscale, 60 Hz / 4
    check_cached(tmp_path / "mp4", clip, 20)
    check_cached(tmp_path / "webm", clip, 20, fmt="webm")
    gray = Clip(obs=stacked[..., 0], acts=np.zeros((20, 1), np.int64), true_rews=np.ones(20),
                env_id="ALE/Pong-v5")
    check_cached(tmp_path / "gray", gray, 20)


def test_frames_in_render_state_and_odd_sizes(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).integers(0, 255, (7, 33, 45, 3), dtype=np.uint8)
    clip = Clip(obs=np.zeros((7, 2), np.float32), acts=np.zeros((7, 1)), true_rews=np.zeros(7),
                env_id="Custom-v0", render_state={"frames": frames})
    out, _ = clip_frames(clip, size=30)
    assert np.array_equal(out, frames)
    path = encode_video(out, tmp_path / "odd.mp4", fps=10)  # odd sides are padded to even
    assert n_frames(path) == 7


def test_unknown_envs_get_a_chart(tmp_path: Path) -> None:
    clip = Clip(obs=np.random.default_rng(0).normal(size=(9, 4)).astype(np.float32),
                acts=np.zeros((9, 1)), true_rews=np.zeros(9), env_id="NoSuchEnv-v0")
    frames, fps = clip_frames(clip, size=64)
    assert frames.shape == (9, 64, 64, 3) and fps == 20.0 and frames.std() > 0
    check_cached(tmp_path, clip, 9)


def test_a_clip_that_cannot_be_rendered_falls_back_to_a_chart(caplog) -> None:
    rng = np.random.default_rng(0)
    clip = Clip(obs=rng.normal(size=(8, 11)).astype(np.float32), acts=np.zeros((8, 2)),
                true_rews=np.zeros(8), env_id="Reacher-v5",
                render_state={"qpos": np.zeros((8, 3)), "qvel": np.zeros((8, 3))})  # nq is 4
    frames, fps = clip_frames(clip, size=48)
    assert frames.shape == (8, 48, 48, 3) and fps == pytest.approx(50.0)
    assert "cannot render clip" in caplog.text
