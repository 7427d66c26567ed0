"""Turn a stored clip into RGB frames a person can judge.

Which renderer is used, first match wins:

* pixel clips: ``render_state["frames"]`` or uint8 image observations (``(T, H, W)``,
  ``(T, H, W, C)`` or channels-first; of stacked frames the newest is shown), scaled up by
  an integer factor;
* MuJoCo clips (``render_state`` has ``qpos`` and ``qvel``): the env's model rendered offscreen
  with ``mujoco.Renderer`` after restoring each step's state, with Gymnasium's default camera
  (locomotion tasks follow the body); shadows, reflections and multisampling are off, which
  makes OSMesa software rendering many times faster;
* Pendulum (obs = cos, sin, thetadot): Gymnasium's own drawing when pygame is installed
  (``env.unwrapped.state = [theta, thetadot]``), else an equivalent numpy drawing;
* anything else: a bar chart of the observation vector over time.

The GL backend is chosen when the first MuJoCo frame is drawn (:mod:`prefrl.mujoco_gl`:
``MUJOCO_GL`` if it names one, else OSMesa without a display); where it cannot be loaded,
MuJoCo clips are shown as charts and one warning says what to install.

>>> import numpy as np
>>> from prefrl.types import Clip
>>> clip = Clip(obs=np.zeros((4, 84, 84), np.uint8), acts=np.zeros((4, 1)),
...             true_rews=np.zeros(4), env_id="ALE/Pong-v5")
>>> frames, fps = clip_frames(clip, size=240)
>>> frames.shape, frames.dtype
((4, 252, 252, 3), dtype('uint8'))
"""

from __future__ import annotations

import atexit
import logging
import math
import os
import threading
from typing import Any

import numpy as np

from prefrl.mujoco_gl import GLUnavailable, ensure_gl_context
from prefrl.types import Clip

_log = logging.getLogger(__name__)
DEFAULT_SIZE = 240
DEFAULT_FPS = 20.0
MAX_FRAMES = 2000
MAX_FPS = 50.0
OFFSCREEN_SAMPLES = 0
"""MuJoCo offscreen multisampling: 0 renders about 3x faster than MuJoCo's 4 with OSMesa
(HalfCheetah at 240x240: 12 vs 35 ms a frame on a busy 2-core machine); H.264 softens the
edges anyway."""
_local = threading.local()  # per-thread renderers: GL contexts belong to one thread
_ALL_SCENES: list[Any] = []  # every thread's, to free them at exit
_ALL_LOCK = threading.Lock()
_WARNED: set[str] = set()  # warnings given once per process (a missing GL library)


class RenderError(RuntimeError):
    """A clip that cannot be turned into frames."""


def _fps_of(env_id: str | None) -> float:
    """Agent steps per simulated second of an env (1 / dt); 20 when unknown."""
    cache: dict[str, float] = _local.__dict__.setdefault("fps", {})
    if not env_id:
        return DEFAULT_FPS
    if env_id.startswith("ALE/") or "NoFrameskip" in env_id:
        return 15.0  # 60 Hz emulator, 4 frames per agent step
    if env_id not in cache:
        try:
            from prefrl.envs import env_dt

            cache[env_id] = 1.0 / env_dt(env_id)
        except Exception:  # noqa: BLE001 - unknown or unmakeable env: a sensible default
            cache[env_id] = DEFAULT_FPS
    return float(max(cache[env_id], 1.0))


def _upscale(frames: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour upscale by the integer factor that brings the short side to >= size."""
    k = max(1, math.ceil(size / max(1, min(frames.shape[1:3]))))
    if k > 1:
        frames = frames.repeat(k, axis=1).repeat(k, axis=2)
    return frames


def pixel_frames(obs: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 RGB of image observations, showing the newest stacked frame.

    >>> pixel_frames(np.zeros((2, 84, 84, 4), np.uint8)).shape
    (2, 84, 84, 3)
    """
    a = np.asarray(obs)
    if a.ndim == 3:  # (T, H, W) grayscale
        a = a[..., None]
    if a.ndim != 4:
        raise RenderError(f"image observations must be (T, H, W[, C]), got {a.shape}")
    if a.shape[1] <= 12 < min(a.shape[2], a.shape[3]):  # channels first (T, C, H, W)
        a = a.transpose(0, 2, 3, 1)
    c = a.shape[-1]
    if c in (1, 3):
        pass
    elif c % 3 == 0:  # stacked RGB frames, newest last
        a = a[..., -3:]
    else:  # stacked grayscale frames, newest last
        a = a[..., -1:]
    if a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    return np.ascontiguousarray(a)


def _no_mujoco_log_file() -> None:
    """Send MuJoCo's warnings to Python logging, not to ``MUJOCO_LOG.TXT`` in the cwd."""
    import mujoco

    config = getattr(mujoco, "MjLogConfig", None)
    if config is not None:  # MuJoCo >= 3.3: keep the console message, drop the file
        c = config.get()
        if c.logto_file:
            c.logto_file = False
            c.set()
    elif mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda msg: _log.warning("MuJoCo: %s", msg))


class _MujocoScene:
    """A MuJoCo env, an offscreen renderer and Gymnasium's default camera, for one env id."""

    def __init__(self, env_id: str, size: int) -> None:
        ensure_gl_context()  # GLUnavailable: one line saying what to install
        import gymnasium
        import mujoco

        _no_mujoco_log_file()  # compiling e.g. HalfCheetah's XML warns
        self.env = gymnasium.make(env_id)
        self.env.reset(seed=0)
        u: Any = self.env.unwrapped
        model, data = u.model, u.data
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        model.vis.quality.offsamples = OFFSCREEN_SAMPLES
        self.renderer = mujoco.Renderer(model, size, size)
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION):
            self.renderer.scene.flags[flag] = False
        cam = mujoco.MjvCamera()  # as Gymnasium's OffScreenViewer + default_camera_config
        cam.type, cam.fixedcamid = mujoco.mjtCamera.mjCAMERA_FREE, -1
        for i in range(3):
            cam.lookat[i] = np.median(data.geom_xpos[:, i])
        cam.distance = model.stat.extent
        config = dict(getattr(getattr(u, "mujoco_renderer", None), "default_cam_config", None)
                      or {})
        for key, value in config.items():
            if isinstance(value, np.ndarray):
                getattr(cam, key)[:] = value
            else:
                setattr(cam, key, value)
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, "track") != -1:
            cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING  # locomotion: follow the body
            cam.trackbodyid = int(config.get("trackbodyid", 1)) if \
                int(config.get("trackbodyid", 1)) > 0 else 1
        self.cam = cam
        self.fps = 1.0 / float(u.dt)

    def frames(self, clip: Clip, stride: int = 1) -> np.ndarray:
        from prefrl.envs import restore_mujoco_state

        qpos, qvel = clip.render_state["qpos"][::stride], clip.render_state["qvel"][::stride]
        u: Any = self.env.unwrapped
        if qpos.shape[1:] != (u.model.nq,) or qvel.shape[1:] != (u.model.nv,):
            raise RenderError(f"clip state {qpos.shape}/{qvel.shape} does not fit {clip.env_id} "
                              f"(nq={u.model.nq}, nv={u.model.nv})")
        out = np.empty((len(qpos), self.renderer.height, self.renderer.width, 3), np.uint8)
        for t, (q, v) in enumerate(zip(qpos, qvel, strict=True)):
            restore_mujoco_state(self.env, q, v)
            self.renderer.update_scene(u.data, camera=self.cam)
            self.renderer.render(out=out[t])
        return out


def _draw_pendulum(thetas: np.ndarray, size: int) -> np.ndarray:
    """Gymnasium's Pendulum picture in numpy: a red rod from the axle, 0 = upright."""
    scale = size / 4.4
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    c = size / 2
    out = np.full((len(thetas), size, size, 3), 255, np.uint8)
    red, half_w = np.array([204, 77, 77], np.uint8), 0.1 * scale
    axle = np.clip(0.05 * scale + 0.5 - np.hypot(xx - c, yy - c), 0, 1)[..., None]
    for t, th in enumerate(thetas):
        ex, ey = c - scale * math.sin(th), c - scale * math.cos(th)
        dx, dy = ex - c, ey - c
        s = np.clip(((xx - c) * dx + (yy - c) * dy) / (dx * dx + dy * dy), 0, 1)
        dist = np.hypot(xx - c - s * dx, yy - c - s * dy)
        a = np.clip(half_w + 0.5 - dist, 0, 1)[..., None]  # anti-aliased capsule
        img = out[t].astype(np.float32)
        img = img * (1 - a) + red * a
        out[t] = (img * (1 - axle)).astype(np.uint8)
    return out


class _PendulumScene:
    """Pendulum-v1 drawn by Gymnasium (pygame) if available, else by :func:`_draw_pendulum`."""

    def __init__(self, env_id: str, size: int) -> None:
        self.size, self.env = size, None
        try:
            import gymnasium
            import pygame  # noqa: F401

            os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
            env = gymnasium.make(env_id, render_mode="rgb_array")
            env.reset(seed=0)
            env.unwrapped.screen_dim = size  # type: ignore[attr-defined]
            self.env = env
        except Exception:  # noqa: BLE001 - no pygame (or no display driver): numpy drawing
            self.env = None

    def frames(self, clip: Clip, stride: int = 1) -> np.ndarray:
        obs = np.asarray(clip.obs, np.float64)[::stride]
        thetas, thetadots = np.arctan2(obs[:, 1], obs[:, 0]), obs[:, 2]
        if self.env is None:
            return _draw_pendulum(thetas, self.size)
        u: Any = self.env.unwrapped
        acts = np.asarray(clip.acts, np.float64).reshape(clip.length, -1)[::stride]
        out = []
        for t in range(len(obs)):
            u.state = np.array([thetas[t], thetadots[t]])
            u.last_u = float(acts[t, 0]) if acts.shape[1] else None
            out.append(np.asarray(self.env.render(), np.uint8))
        return np.stack(out)


def _bar_chart(obs: np.ndarray, size: int) -> np.ndarray:
    """Fallback picture: one horizontal bar per observation dimension, and a time bar."""
    x = np.asarray(obs, np.float64).reshape(len(obs), -1)[:, :48]
    lo, hi = x.min(0), x.max(0)
    span = np.where(hi - lo > 1e-9, hi - lo, 1.0)
    v = (x - lo) / span
    t_n, d = x.shape
    out = np.full((t_n, size, size, 3), 248, np.uint8)
    top, bottom = 8, size - 20
    step = (bottom - top) / max(d, 1)
    for t in range(t_n):
        for i in range(d):
            y0, y1 = int(top + i * step + 1), int(top + (i + 1) * step - 1)
            out[t, y0:max(y1, y0 + 1), 8:8 + int(v[t, i] * (size - 16)) + 1] = (70, 110, 190)
        out[t, size - 12:size - 6, 8:8 + int((t + 1) / t_n * (size - 16))] = (60, 60, 60)
    return out


def _scene(kind: str, env_id: str, size: int) -> Any:
    scenes: dict[tuple[str, str, int], Any] = _local.__dict__.setdefault("scenes", {})
    key = (kind, env_id, size)
    if key not in scenes:
        scenes[key] = (_MujocoScene if kind == "mujoco" else _PendulumScene)(env_id, size)
        with _ALL_LOCK:
            _ALL_SCENES.append(scenes[key])
    return scenes[key]


def _is_pendulum(clip: Clip, env_id: str) -> bool:
    return env_id.split("/")[-1].startswith("Pendulum") and clip.obs.ndim == 2 \
        and clip.obs.shape[1] == 3


def clip_frames(clip: Clip, *, env_id: str | None = None,
                size: int = DEFAULT_SIZE) -> tuple[np.ndarray, float]:
    """Return ``(frames (T', H, W, 3) uint8, fps)`` for a clip (see the module docstring).

    ``env_id`` is used when the clip's own ``env_id`` is not a Gymnasium id. Clips of envs
    faster than :data:`MAX_FPS` steps per second show every k-th step (T' = ceil(T / k)), so
    that videos still play in real time.
    """
    env = clip.env_id if _registered(clip.env_id) else (env_id or clip.env_id)
    rs = clip.render_state
    if "frames" in rs or (clip.obs.dtype == np.uint8 and clip.obs.ndim >= 3):
        fps = _fps_of(env)
        stride = _stride(clip, fps)
        frames = _upscale(pixel_frames(rs.get("frames", clip.obs)[::stride]), size)
        return frames, _shown_fps(fps, stride)
    kind = "mujoco" if "qpos" in rs and "qvel" in rs else \
        "pendulum" if _is_pendulum(clip, env) else "chart"
    if kind != "chart":
        try:
            scene = _scene(kind, env, size)
            fps = scene.fps if kind == "mujoco" else _fps_of(env)
            stride = _stride(clip, fps)
            return scene.frames(clip, stride), _shown_fps(fps, stride)
        except GLUnavailable as e:
            _warn_once(str(e))
        except Exception as e:  # noqa: BLE001 - a chart beats a pair nobody can answer
            _log.warning("cannot render clip %s of %s (%r); showing its observations", clip.hash,
                         env, e)
    fps = _fps_of(env)
    stride = _stride(clip, fps)
    return _bar_chart(clip.obs[::stride], size), _shown_fps(fps, stride)


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        _log.warning("%s", message)


def _stride(clip: Clip, fps: float) -> int:
    """Show every k-th step: at most MAX_FPS frames per second and MAX_FRAMES in all."""
    return max(1, math.ceil(fps / MAX_FPS - 1e-9), math.ceil(clip.length / MAX_FRAMES))


def _shown_fps(fps: float, stride: int) -> float:
    return float(min(max(fps / stride, 1.0), MAX_FPS))


def _registered(env_id: str) -> bool:
    try:
        import gymnasium

        if env_id.startswith("ALE/"):
            return True
        gymnasium.spec(env_id)
        return True
    except Exception:  # noqa: BLE001 - gymnasium raises several error types for unknown ids
        return False


def _close(scenes: list[Any]) -> None:
    for scene in scenes:
        for obj in (getattr(scene, "renderer", None), getattr(scene, "env", None)):
            try:
                if obj is not None:
                    obj.close()
            except Exception:  # noqa: BLE001 - best effort cleanup
                _log.debug("closing %r failed", obj, exc_info=True)


def close_renderers() -> None:
    """Free this thread's renderers and envs."""
    mine = list(_local.__dict__.pop("scenes", {}).values())
    with _ALL_LOCK:
        _ALL_SCENES[:] = [s for s in _ALL_SCENES if all(s is not m for m in mine)]
    _close(mine)


@atexit.register
def _close_all() -> None:
    """Free every GL context while MuJoCo is still loaded (not in interpreter teardown)."""
    with _ALL_LOCK:
        scenes, _ALL_SCENES[:] = list(_ALL_SCENES), []
    _local.__dict__.pop("scenes", None)
    _close(scenes)
