"""Make environments: the fixed-horizon wrapper of the paper, MuJoCo render state, Atari.

:func:`make_env` builds a preset's Gymnasium env (see :mod:`prefrl.presets`) without its own
time limit, wrapped in :class:`FixedHorizon`, so that every episode lasts exactly ``horizon``
steps and episode length carries no reward information. A fall does not end the episode: with
``termination = "continue"`` (MuJoCo) the physics goes on and the lost healthy bonus is the
penalty the agent must learn, as in Christiano et al. 2017; with ``"reset"`` (Atari) the game
resets in place.

>>> p = load_preset("pendulum")
>>> env = make_env(p, seed=0)
>>> obs, info = env.reset()
>>> obs, rew, terminated, truncated, info = env.step(env.action_space.sample())
>>> terminated, truncated, "true_reward" in info
(False, False, True)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Sequence
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

from prefrl.mujoco_gl import import_mujoco
from prefrl.posture import PosturePenalty  # noqa: F401 - re-exported
from prefrl.presets import (  # noqa: F401 - re-exported: prefrl.envs is the public home
    ALGOS,
    PRESET_DIR,
    TERMINATIONS,
    EnvPreset,
    list_presets,
    load_preset,
    preset_dir,
)

_log = logging.getLogger(__name__)


class FixedHorizon(gymnasium.Wrapper):
    """Episodes last exactly ``horizon`` steps; the inner env's terminations never end them.

    ``termination`` says what happens when the inner env terminates (a fall) before
    ``horizon``:

    - ``"continue"`` (MuJoCo, as in Christiano et al. 2017, appendix A): the termination flag is
      ignored and the physics goes on. The inner reward already stops paying its healthy/alive
      bonus while the condition holds (Gymnasium v5); ``unhealthy_penalty`` (``<= 0``) is added
      to the true reward on every such step where that lost bonus is too weak a signal, and
      ``posture_penalty`` (:class:`~prefrl.posture.PosturePenalty`) on every step, graded by
      how far a joint is out of its range (``info["posture_penalty"]``).
    - ``"reset"`` (Atari, as in the paper): ``termination_penalty`` is added once and the inner
      env is reset in place; the reset observation is returned. This lets an agent fall on
      purpose to respawn, so it is not a MuJoCo default.

    A step is *unhealthy* when the inner env terminates or its ``is_healthy`` is false
    (Hopper, Walker2d and Ant built with ``terminate_when_unhealthy=False``); a *fall* is a
    healthy-to-unhealthy change. ``terminated`` is always ``False``; ``truncated`` is ``True``
    exactly at step ``horizon``. ``info`` has ``true_reward`` (the reward returned),
    ``raw_reward`` (the inner env's), ``unhealthy``, ``early_termination`` (the inner flag),
    and this episode's counts so far: ``n_unhealthy_steps``, ``n_falls`` and
    ``n_early_terminations`` (resets, in ``reset`` mode). At a reset in place also
    ``early_termination_obs`` (the inner final obs). Whenever an inner episode ends or is cut by
    the horizon, ``info["inner_episode"] = {"r": raw return, "l": length, "ended": bool}``
    reports it (the real game score of an Atari game, ``ended=False`` when the horizon cut it).
    """

    def __init__(
        self, env: gymnasium.Env, horizon: int, termination_penalty: float = 0.0,
        *, termination: str = "reset", unhealthy_penalty: float = 0.0,
        posture_penalty: Sequence[PosturePenalty] = (), seed: int | None = None,
    ) -> None:
        super().__init__(env)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if termination not in TERMINATIONS:
            raise ValueError(f"termination must be one of {', '.join(TERMINATIONS)}, "
                             f"got {termination!r}")
        self.horizon = int(horizon)
        self.termination = termination
        self.termination_penalty = float(termination_penalty)
        self.unhealthy_penalty = float(unhealthy_penalty)
        self.posture_penalty = tuple(posture_penalty)
        if self.posture_penalty and getattr(env.unwrapped, "data", None) is None:
            raise ValueError("posture_penalty needs a MuJoCo env (one with .data.qpos)")
        self._seed = seed  # used by the first reset() that is given no seed
        self._t, self._n_early, self._done = 0, 0, True
        self._n_unhealthy, self._n_falls, self._was_unhealthy = 0, 0, False
        self._inner_r, self._inner_l = 0.0, 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the inner env and the step counters."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        self._t, self._n_early, self._done = 0, 0, False
        self._n_unhealthy, self._n_falls, self._was_unhealthy = 0, 0, False
        self._inner_r, self._inner_l = 0.0, 0
        return self.env.reset(seed=seed, options=options)

    def _unhealthy(self, terminated: bool) -> bool:
        healthy = getattr(self.env.unwrapped, "is_healthy", None)
        return bool(terminated) or (healthy is not None and not bool(healthy))

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; handle an inner termination as ``termination`` says (see the class doc)."""
        if self._done:
            raise RuntimeError("FixedHorizon: step() called before reset() or after the episode")
        obs, raw, term, trunc, info = self.env.step(action)
        self._t += 1
        reward = float(raw)
        info = dict(info)
        info["raw_reward"] = reward
        info["early_termination"] = bool(term)
        self._inner_r += reward
        self._inner_l += 1
        unhealthy = self._unhealthy(term)
        if unhealthy:
            self._n_unhealthy += 1
            self._n_falls += not self._was_unhealthy
            reward += self.unhealthy_penalty
        self._was_unhealthy = unhealthy
        if self.posture_penalty:
            qpos = self.env.unwrapped.data.qpos  # type: ignore[attr-defined]
            posture = sum(p.of(qpos) for p in self.posture_penalty)
            info["posture_penalty"] = posture
            reward += posture
        resets = self.termination == "reset" and term
        if resets:
            reward += self.termination_penalty
            self._n_early += 1
        truncated = self._t >= self.horizon
        if resets or trunc or truncated:
            info["inner_episode"] = {"r": self._inner_r, "l": self._inner_l,
                                     "ended": bool(resets or trunc)}
            self._inner_r, self._inner_l = 0.0, 0
        if (resets or trunc) and not truncated:
            info["early_termination_obs"] = obs
            obs, reset_info = self.env.reset()
            info["reset_info"] = reset_info
            self._was_unhealthy = False
        info["true_reward"] = reward
        info["unhealthy"] = unhealthy
        info["n_unhealthy_steps"] = self._n_unhealthy
        info["n_falls"] = self._n_falls
        info["n_early_terminations"] = self._n_early
        self._done = truncated
        return obs, reward, False, truncated, info


def mujoco_render_state(env: gymnasium.Env) -> dict[str, np.ndarray]:
    """``{"qpos", "qvel"}`` (float64 1-D copies) of a MuJoCo env; ``{}`` for other envs."""
    data = getattr(env.unwrapped, "data", None)
    if data is None or not hasattr(data, "qpos"):
        return {}
    return {
        "qpos": np.array(data.qpos, dtype=np.float64).ravel(),
        "qvel": np.array(data.qvel, dtype=np.float64).ravel(),
    }


def restore_mujoco_state(env: gymnasium.Env, qpos: np.ndarray, qvel: np.ndarray) -> None:
    """Put a MuJoCo env back into the state saved by :func:`mujoco_render_state`.

    Positions and velocities are restored exactly; derived quantities are recomputed for them,
    whereas after ``mj_step`` they lag one physics sub-step (body positions differ by ~1e-5;
    contact forces, e.g. Ant's ``cfrc_ext`` observations, can differ a lot).
    """
    u: Any = env.unwrapped
    if not hasattr(u, "set_state"):
        raise ValueError(f"{u} is not a MuJoCo env: cannot restore qpos/qvel")
    u.set_state(np.asarray(qpos, dtype=np.float64), np.asarray(qvel, dtype=np.float64))
    mujoco = import_mujoco()
    mujoco.mj_rnePostConstraint(u.model, u.data)  # contact forces (cfrc_ext), as after a step


def _route_mujoco_warnings() -> None:
    """Send MuJoCo warnings to logging, not to ``MUJOCO_LOG.TXT`` in the working directory.

    Only where no handler is installed yet (HalfCheetah's XML warns on every load).
    """
    mujoco = import_mujoco()  # with MUJOCO_GL=disable: simulating needs no GL library
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(lambda msg: _log.debug("MuJoCo: %s", msg))


def _make_inner(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gymnasium.Env:
    """``gymnasium.make`` without the registered time limit; bad ids -> ``ValueError``.

    ``kwargs`` go to the env's constructor (e.g. ALE's ``frameskip``).
    """
    _route_mujoco_warnings()
    try:
        if env_id.startswith("ALE/"):
            import ale_py

            gymnasium.register_envs(ale_py)
        spec = dataclasses.replace(gymnasium.spec(env_id), max_episode_steps=None)
        return gymnasium.make(spec, render_mode=render_mode, **kwargs)
    except (gymnasium.error.Error, ImportError, ModuleNotFoundError) as e:
        raise ValueError(f"cannot make env {env_id!r}: {type(e).__name__}: {e}") from e


def make_env(
    preset: EnvPreset, *, seed: int | None = None, render_mode: str | None = None
) -> gymnasium.Env:
    """Build ``preset``'s env: no Gymnasium time limit, wrapped in :class:`FixedHorizon`.

    ``preset.env_kwargs`` go to the env's constructor (e.g. ``terminate_when_unhealthy``).

    With ``seed``, the action and observation spaces are seeded and the first ``reset()``
    without a seed uses it. ``ALE/`` ids get the Atari preprocessing of
    :func:`prefrl.atari.make_atari_env` (84x84 grey, frame skip 4, 4 stacked frames).
    """
    if preset.env_id.startswith("ALE/"):
        from prefrl.atari import make_atari_env

        return make_atari_env(preset, seed=seed, render_mode=render_mode)
    env = FixedHorizon(
        _make_inner(preset.env_id, render_mode, **preset.env_kwargs), preset.horizon,
        preset.termination_penalty, termination=preset.termination,
        unhealthy_penalty=preset.unhealthy_penalty, posture_penalty=preset.posture_penalty,
        seed=seed,
    )
    if seed is not None:
        env.action_space.seed(seed)
        env.observation_space.seed(seed)
    return env


@functools.cache
def env_dt(env_id: str) -> float:
    """Return seconds of simulated time per agent step (MuJoCo: frame_skip * timestep).

    Reads ``env.unwrapped.dt``, else ``1 / metadata["render_fps"]``; neither -> ``ValueError``.
    Atari (``ALE/`` ids): frame skip 4 of the console's 60 Hz, i.e. 1/15 s.
    """
    if env_id.startswith("ALE/"):
        from prefrl.atari import ATARI_FPS, FRAME_SKIP

        _make_inner(env_id).close()  # a bad id -> ValueError
        return FRAME_SKIP / ATARI_FPS
    env = _make_inner(env_id)
    try:
        dt = getattr(env.unwrapped, "dt", None)
        if dt is None:
            fps = env.metadata.get("render_fps")
            if not fps:
                raise ValueError(f"env {env_id!r} has neither dt nor metadata['render_fps']")
            dt = 1.0 / fps
        return float(dt)
    finally:
        env.close()
