"""Environment presets (``envs/*.toml``) and the fixed-horizon wrapper of the paper.

A preset names a task, its episode length, clip length, label and step budgets and tuned
hyper-parameters per RL algorithm. :func:`make_env` builds the Gymnasium env without its own
time limit, wrapped in :class:`FixedHorizon`, so that every episode lasts exactly ``horizon``
steps and episode length carries no reward information: an early termination (a fall) becomes
``termination_penalty`` added to the true reward, and the inner env is reset in place.

>>> p = load_preset("pendulum")
>>> (p.env_id, p.horizon, p.clip_len, p.algo_kwargs_for("ppo")["n_steps"])
('Pendulum-v1', 200, 25, 1024)
>>> env = make_env(p, seed=0)
>>> obs, info = env.reset()
>>> obs, rew, terminated, truncated, info = env.step(env.action_space.sample())
>>> terminated, truncated, "true_reward" in info
(False, False, True)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, SupportsFloat

import gymnasium
import numpy as np

_log = logging.getLogger(__name__)

ALGOS = ("ppo", "a2c", "trpo")
"""Algorithms a preset may carry hyper-parameters for (SB3 / sb3-contrib class names, lower)."""

PRESET_DIR = Path(os.environ.get("PREFRL_ENVS_DIR") or Path(__file__).parent.parent / "envs")
"""Default preset folder: ``$PREFRL_ENVS_DIR``, else ``envs/`` at the repository root."""

# Preset-level settings an algorithm table may override (they are not SB3 kwargs).
_ALGO_OVERRIDES = {"n_envs": int, "normalize_obs": bool}
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "env_id": str, "horizon": int, "termination_penalty": (int, float), "clip_len": int,
    "labels": int, "steps": int, "algo": str, "n_envs": int,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "normalize_obs": bool, "dt": (int, float), "notes": str, "reward_model": dict,
    "preference": dict, "sticky_actions": (int, float), "score_mask": bool,
    **{a: dict for a in ALGOS},
}
# ``policy_kwargs.optimizer_class`` names a preset may use: torch.optim classes, and SB3's
# TF-like RMSprop (the zoo's A2C recipe for Atari).
_OPTIMIZERS = {"RMSpropTFLike": "stable_baselines3.common.sb2_compat.rmsprop_tf_like"}
_ACTIVATIONS = {
    "relu": "ReLU", "tanh": "Tanh", "elu": "ELU", "gelu": "GELU", "leaky_relu": "LeakyReLU",
    "silu": "SiLU", "sigmoid": "Sigmoid", "softplus": "Softplus",
}


@dataclass(frozen=True)
class EnvPreset:
    """One task's settings, as read from ``envs/<name>.toml``.

    Attributes:
        name: short name (the file's stem), e.g. ``"HalfCheetah"``.
        env_id: Gymnasium id, e.g. ``"HalfCheetah-v5"``.
        horizon: fixed episode length in agent steps.
        termination_penalty: true reward added at an early termination (``<= 0``).
        clip_len: steps per clip shown to the teacher (about 1.5 s of simulated time).
        labels: default label budget.
        steps: default environment step budget.
        algo: default RL algorithm (one of :data:`ALGOS`).
        n_envs: parallel envs the default hyper-parameters assume.
        normalize_obs: wrap the vec env in ``VecNormalize`` on observations.
        algo_kwargs: per algorithm, keyword arguments of its SB3 class (plain TOML types).
        algo_overrides: per algorithm, ``n_envs`` / ``normalize_obs`` that differ from the above.
        reward_model: overrides of the reward model's settings, e.g. ``{"hidden": [64, 64]}``.
        preference: overrides of the preference-learning defaults of a run, e.g.
            ``{"pretrain_frac": 0.0909, "update_epochs": 3}`` (see ``prefrl.config``).
        sticky_actions: ALE ``repeat_action_probability`` (None: the env's default).
        score_mask: hide the on-screen score from the reward model (Atari, see
            :mod:`prefrl.atari`).
        dt: simulated seconds per agent step, where the preset states it.
        notes: free text.
        path: the file it was read from.

    """

    name: str
    env_id: str
    horizon: int
    termination_penalty: float
    clip_len: int
    labels: int
    steps: int
    algo: str
    n_envs: int
    normalize_obs: bool = False
    algo_kwargs: dict[str, dict[str, Any]] = field(default_factory=dict)
    algo_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    reward_model: dict[str, Any] = field(default_factory=dict)
    preference: dict[str, Any] = field(default_factory=dict)
    sticky_actions: float | None = None
    score_mask: bool = False
    dt: float | None = None
    notes: str = ""
    path: Path | None = None

    def __post_init__(self) -> None:
        checks = [
            (self.horizon >= 1, f"horizon must be >= 1, got {self.horizon}"),
            (1 <= self.clip_len <= self.horizon,
             f"clip_len must be in [1, horizon={self.horizon}], got {self.clip_len}"),
            (self.termination_penalty <= 0,
             f"termination_penalty must be <= 0, got {self.termination_penalty}"),
            (self.labels >= 0, f"labels must be >= 0, got {self.labels}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.n_envs >= 1, f"n_envs must be >= 1, got {self.n_envs}"),
            (self.algo in ALGOS, f"algo must be one of {', '.join(ALGOS)}, got {self.algo!r}"),
            (self.sticky_actions is None or 0.0 <= self.sticky_actions <= 1.0,
             f"sticky_actions must be in [0, 1], got {self.sticky_actions}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"preset {self.name!r}: {msg}")

    def algo_kwargs_for(self, algo: str | None = None, *, resolve: bool = True) -> dict[str, Any]:
        """SB3 keyword arguments for ``algo`` (default: :attr:`algo`), as a fresh deep copy.

        With ``resolve``, ``policy_kwargs.activation_fn`` names ("relu") become ``torch.nn``
        classes and ``policy_kwargs.optimizer_class`` names ("RMSpropTFLike", "Adam") optimiser
        classes; without, everything stays plain (for logging). Unknown algo -> ``ValueError``.
        """
        algo = (algo or self.algo).lower()
        if algo not in ALGOS:
            raise ValueError(f"unknown algo {algo!r}; known: {', '.join(ALGOS)}")
        kwargs = copy.deepcopy(self.algo_kwargs.get(algo, {}))
        pk = kwargs.get("policy_kwargs", {})
        act = pk.get("activation_fn")
        if resolve and isinstance(act, str):
            import torch.nn

            pk["activation_fn"] = getattr(torch.nn, _ACTIVATIONS[act.lower()])
        opt = pk.get("optimizer_class")
        if resolve and isinstance(opt, str):
            pk["optimizer_class"] = _optimizer_class(opt)
        return kwargs

    def n_envs_for(self, algo: str | None = None) -> int:
        """Parallel envs the hyper-parameters of ``algo`` assume."""
        ov = self.algo_overrides.get((algo or self.algo).lower(), {})
        return int(ov.get("n_envs", self.n_envs))

    def normalize_obs_for(self, algo: str | None = None) -> bool:
        """Whether ``algo``'s hyper-parameters assume ``VecNormalize`` on observations."""
        ov = self.algo_overrides.get((algo or self.algo).lower(), {})
        return bool(ov.get("normalize_obs", self.normalize_obs))


def _optimizer_class(name: str) -> type:
    """``"RMSpropTFLike"`` -> SB3's class, other names -> ``torch.optim.<name>``."""
    import importlib

    import torch.optim

    if name in _OPTIMIZERS:
        return getattr(importlib.import_module(_OPTIMIZERS[name]), name)
    if not _known_optimizer(name):
        raise ValueError(f"unknown optimizer {name!r}")
    return getattr(torch.optim, name)


def _known_optimizer(name: str) -> bool:
    if name in _OPTIMIZERS:
        return True
    import torch.optim

    cls = getattr(torch.optim, name, None)
    return isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)


def preset_dir() -> Path:
    """Return the preset folder now: ``$PREFRL_ENVS_DIR`` if set, else :data:`PRESET_DIR`."""
    env = os.environ.get("PREFRL_ENVS_DIR")
    return Path(env) if env else PRESET_DIR


def _preset_files() -> list[Path]:
    d = preset_dir()
    if not d.is_dir():
        raise ValueError(f"preset folder {d} not found; set PREFRL_ENVS_DIR to the envs/ folder")
    return sorted(d.glob("*.toml"), key=lambda p: p.stem.lower())


def list_presets() -> list[str]:
    """Short names of the presets in :func:`preset_dir`, sorted case-insensitively."""
    return [p.stem for p in _preset_files()]


def _type_name(t: type | tuple[type, ...]) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    names: dict[type, str] = {dict: "table"}
    return " or ".join(names.get(x, x.__name__) for x in ts)


def _check_type(path: Path, key: str, value: Any, t: type | tuple[type, ...]) -> None:
    ts = t if isinstance(t, tuple) else (t,)
    if isinstance(value, bool) and bool not in ts or not isinstance(value, ts):
        raise ValueError(
            f"{path}: key {key!r} must be {_type_name(t)}, got {type(value).__name__} {value!r}"
        )


def _check_plain(path: Path, key: str, value: Any) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _check_plain(path, f"{key}.{k}", v)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(path, f"{key}[{i}]", v)
    elif not isinstance(value, int | float | str | bool):
        raise ValueError(f"{path}: key {key!r} must hold plain values, got {type(value).__name__}")


def _parse_algo_table(path: Path, algo: str, table: dict[str, Any]) -> tuple[dict, dict]:
    kwargs, overrides = {}, {}
    for k, v in table.items():
        if k in _ALGO_OVERRIDES:
            _check_type(path, f"{algo}.{k}", v, _ALGO_OVERRIDES[k])
            overrides[k] = v
            continue
        _check_plain(path, f"{algo}.{k}", v)
        if k in ("learning_rate", "clip_range"):
            _check_type(path, f"{algo}.{k}", v, (int, float))
        kwargs[k] = v
    act = kwargs.get("policy_kwargs", {}).get("activation_fn")
    if act is not None and (not isinstance(act, str) or act.lower() not in _ACTIVATIONS):
        raise ValueError(f"{path}: key '{algo}.policy_kwargs.activation_fn' must be one of "
                         f"{', '.join(_ACTIVATIONS)}, got {act!r}")
    opt = kwargs.get("policy_kwargs", {}).get("optimizer_class")
    if opt is not None and not (isinstance(opt, str) and _known_optimizer(opt)):
        raise ValueError(f"{path}: key '{algo}.policy_kwargs.optimizer_class' must name a "
                         f"torch.optim class or {', '.join(_OPTIMIZERS)}, got {opt!r}")
    return kwargs, overrides


def _read_preset(path: Path) -> EnvPreset:
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read preset: {e}") from e
    for key, t in _REQUIRED.items():
        if key not in data:
            raise ValueError(f"{path}: missing required key {key!r}")
        _check_type(path, key, data[key], t)
    for key, value in data.items():
        if key not in _REQUIRED and key not in _OPTIONAL:
            raise ValueError(f"{path}: unknown key {key!r}")
        if key in _OPTIONAL:
            _check_type(path, key, value, _OPTIONAL[key])
    if data["algo"] not in data:
        raise ValueError(f"{path}: key {data['algo']!r} (the table of algo) is missing")
    kwargs, overrides = {}, {}
    for a in ALGOS:
        if a in data:
            kwargs[a], ov = _parse_algo_table(path, a, data[a])
            if ov:
                overrides[a] = ov
    rm = data.get("reward_model", {})
    _check_plain(path, "reward_model", rm)
    pref = data.get("preference", {})
    _check_plain(path, "preference", pref)
    try:
        return EnvPreset(
            name=path.stem, env_id=data["env_id"], horizon=data["horizon"],
            termination_penalty=float(data["termination_penalty"]), clip_len=data["clip_len"],
            labels=data["labels"], steps=data["steps"], algo=data["algo"], n_envs=data["n_envs"],
            normalize_obs=data.get("normalize_obs", False), algo_kwargs=kwargs,
            algo_overrides=overrides, reward_model=rm, notes=data.get("notes", ""), path=path,
            dt=float(data["dt"]) if "dt" in data else None, preference=pref,
            sticky_actions=float(data["sticky_actions"]) if "sticky_actions" in data else None,
            score_mask=data.get("score_mask", False),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def load_preset(name_or_id: str | Path) -> EnvPreset:
    """Load a preset by short name (any case), Gymnasium id, or path to a ``.toml`` file.

    Unknown names and malformed files raise ``ValueError`` with a one-line message.
    """
    s = str(name_or_id)
    if s.endswith(".toml") or Path(s).is_file():
        return _read_preset(Path(s))
    files = _preset_files()
    for p in files:
        if p.stem.lower() == s.lower():
            return _read_preset(p)
    for p in files:
        preset = _read_preset(p)
        if preset.env_id.lower() == s.lower():
            return preset
    raise ValueError(f"unknown env {s!r}; known: {', '.join(p.stem for p in files)}")


class FixedHorizon(gymnasium.Wrapper):
    """Episodes last exactly ``horizon`` steps; early terminations become a penalty.

    When the inner env terminates (or truncates) before ``horizon``, the step's reward gets
    ``termination_penalty`` (terminations only), the inner env is reset in place and the reset
    observation is returned. ``terminated`` is always ``False``; ``truncated`` is ``True``
    exactly at step ``horizon``. ``info`` has ``true_reward`` (the penalised reward returned),
    ``raw_reward`` (the inner env's), ``early_termination`` and ``n_early_terminations`` (this
    episode, so far); at an early end also ``early_termination_obs`` (the inner final obs).
    Whenever an inner episode ends (terminated or truncated) or is cut by the horizon,
    ``info["inner_episode"] = {"r": raw return, "l": length, "ended": bool}`` reports it (the
    real game score of an Atari game, ``ended=False`` when the horizon cut it short).
    """

    def __init__(
        self, env: gymnasium.Env, horizon: int, termination_penalty: float = 0.0,
        *, seed: int | None = None,
    ) -> None:
        super().__init__(env)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = int(horizon)
        self.termination_penalty = float(termination_penalty)
        self._seed = seed  # used by the first reset() that is given no seed
        self._t, self._n_early, self._done = 0, 0, True
        self._inner_r, self._inner_l = 0.0, 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Reset the inner env and the step counter."""
        if seed is None and self._seed is not None:
            seed, self._seed = self._seed, None
        self._t, self._n_early, self._done = 0, 0, False
        self._inner_r, self._inner_l = 0.0, 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        """Step; on an inner episode end before ``horizon``, penalise and reset in place."""
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
        if term:
            reward += self.termination_penalty
            self._n_early += 1
        truncated = self._t >= self.horizon
        if term or trunc or truncated:
            info["inner_episode"] = {"r": self._inner_r, "l": self._inner_l,
                                     "ended": bool(term or trunc)}
            self._inner_r, self._inner_l = 0.0, 0
        if (term or trunc) and not truncated:
            info["early_termination_obs"] = obs
            obs, reset_info = self.env.reset()
            info["reset_info"] = reset_info
        info["true_reward"] = reward
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
    import mujoco

    mujoco.mj_rnePostConstraint(u.model, u.data)  # contact forces (cfrc_ext), as after a step


def _route_mujoco_warnings() -> None:
    """Send MuJoCo warnings to logging, not to ``MUJOCO_LOG.TXT`` in the working directory.

    Only where no handler is installed yet (HalfCheetah's XML warns on every load).
    """
    import mujoco

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

    With ``seed``, the action and observation spaces are seeded and the first ``reset()``
    without a seed uses it. ``ALE/`` ids get the Atari preprocessing of
    :func:`prefrl.atari.make_atari_env` (84x84 grey, frame skip 4, 4 stacked frames).
    """
    if preset.env_id.startswith("ALE/"):
        from prefrl.atari import make_atari_env

        return make_atari_env(preset, seed=seed, render_mode=render_mode)
    env = FixedHorizon(
        _make_inner(preset.env_id, render_mode), preset.horizon, preset.termination_penalty,
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
