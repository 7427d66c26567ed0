"""Environment presets: ``envs/<name>.toml`` files read into :class:`EnvPreset`.

A preset names a task, its episode length, clip length, label and step budgets, tuned
hyper-parameters per RL algorithm and optional ``[reward_model]`` / ``[preference]`` overrides.

>>> p = load_preset("pendulum")
>>> (p.env_id, p.horizon, p.clip_len, p.algo_kwargs_for("ppo")["n_steps"])
('Pendulum-v1', 200, 25, 1024)
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefrl.posture import PosturePenalty, posture_penalties

ALGOS = ("ppo", "a2c", "trpo", "sac")
"""Algorithms a preset may carry hyper-parameters for (SB3 / sb3-contrib class names, lower)."""

TERMINATIONS = ("continue", "reset")
"""What happens at an inner env's termination (a fall); see :class:`prefrl.envs.FixedHorizon`.

``continue``: the physics goes on to the fixed horizon (MuJoCo default, as in the paper);
``reset``: a penalty and a reset in place (Atari default, as in the paper).
"""

PACKAGED_PRESET_DIR = Path(__file__).parent / "preset_files"
"""Where an installed wheel has the presets (setup.py copies ``envs/*.toml`` there)."""
_REPO_PRESET_DIR = Path(__file__).parent.parent / "envs"
PRESET_DIR = Path(os.environ.get("PREFRL_ENVS_DIR")
                  or (PACKAGED_PRESET_DIR if PACKAGED_PRESET_DIR.is_dir() else _REPO_PRESET_DIR))
"""Default preset folder: ``$PREFRL_ENVS_DIR``, else the installed package's presets, else
``envs/`` at the repository root (a checkout or an editable install)."""

PREFERENCE_DEFAULTS: dict[str, Any] = {
    "oversample": 10, "pretrain_frac": 0.25, "pretrain_clips": 400, "ensemble_size": 3,
    "update_epochs": 10, "pretrain_epochs": 100, "background_reward": False,
    "reward_schedule": "fast", "reward_norm": "recent", "pool_clips": 3000,
    "reward_l2": "adaptive", "reward_val_frac": 1.0 / math.e,
}
"""Preference-learning settings of a run where neither the CLI nor the preset says. A preset
sets them in its [preference] table, or for one algorithm's runs in that algorithm's table."""
PREFERENCE_CHOICES: dict[str, tuple[str, ...]] = {
    "reward_schedule": ("fast", "full"), "reward_norm": ("recent", "labelled"),
    "reward_l2": ("adaptive", "off"),
}
"""The allowed values of the preference settings that name a choice."""
# Preset-level settings an algorithm table may override besides [preference] keys (they are
# not SB3 kwargs): the PEBBLE settings unsup_steps / feedback_every are read from [sac].
_ALGO_OVERRIDES = {"n_envs": int, "normalize_obs": bool, "unsup_steps": int, "feedback_every": int}
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "env_id": str, "horizon": int, "clip_len": int, "labels": int, "steps": int, "algo": str,
    "n_envs": int,
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "normalize_obs": bool, "dt": (int, float), "notes": str, "reward_model": dict,
    "preference": dict, "sticky_actions": (int, float), "score_mask": bool,
    "termination": str, "termination_penalty": (int, float), "unhealthy_penalty": (int, float),
    "env_kwargs": dict, "posture_penalty": (dict, list),
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
        termination: ``"continue"`` or ``"reset"`` at an inner termination (:data:`TERMINATIONS`;
            default ``reset`` for Atari ids, ``continue`` otherwise).
        termination_penalty: true reward added at a reset in place (``<= 0``, ``reset`` only).
        unhealthy_penalty: true reward added on every unhealthy step (``<= 0``).
        posture_penalty: graded penalties for joints outside a range (:class:`PosturePenalty`),
            added to the true reward on every step.
        env_kwargs: keyword arguments of the env's constructor, e.g.
            ``{"terminate_when_unhealthy": False}``.
        clip_len: steps per clip shown to the teacher (about 1.5 s of simulated time).
        labels: default label budget.
        steps: default environment step budget.
        algo: default RL algorithm (one of :data:`ALGOS`).
        n_envs: parallel envs the default hyper-parameters assume.
        normalize_obs: wrap the vec env in ``VecNormalize`` on observations.
        algo_kwargs: per algorithm, keyword arguments of its SB3 class (plain TOML types).
        algo_overrides: per algorithm, ``n_envs`` / ``normalize_obs`` that differ from the above,
            and :data:`PREFERENCE_DEFAULTS` keys for that algorithm's runs (beating
            :attr:`preference`), e.g. ``{"sac": {"reward_schedule": "full"}}``.
        reward_model: overrides of the reward model's settings, e.g. ``{"hidden": [64, 64]}``.
        preference: overrides of :data:`PREFERENCE_DEFAULTS` for a run, e.g.
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
    clip_len: int
    labels: int
    steps: int
    algo: str
    n_envs: int
    termination: str = "continue"
    termination_penalty: float = 0.0
    unhealthy_penalty: float = 0.0
    posture_penalty: tuple[PosturePenalty, ...] = ()
    env_kwargs: dict[str, Any] = field(default_factory=dict)
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
            (self.unhealthy_penalty <= 0,
             f"unhealthy_penalty must be <= 0, got {self.unhealthy_penalty}"),
            (self.termination in TERMINATIONS, f"termination must be one of "
             f"{', '.join(TERMINATIONS)}, got {self.termination!r}"),
            (self.labels >= 0, f"labels must be >= 0, got {self.labels}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.n_envs >= 1, f"n_envs must be >= 1, got {self.n_envs}"),
            (self.algo in ALGOS, f"algo must be one of {', '.join(ALGOS)}, got {self.algo!r}"),
            (self.sticky_actions is None or 0.0 <= self.sticky_actions <= 1.0,
             f"sticky_actions must be in [0, 1], got {self.sticky_actions}"),
        ]
        ovs = self.algo_overrides
        if not (isinstance(self.preference, dict) and isinstance(ovs, dict)
                and all(isinstance(t, dict) for t in ovs.values())):
            raise ValueError(f"preset {self.name!r}: preference and algo_overrides must be tables")
        tables = {"preference": self.preference}
        for algo, overrides in ovs.items():
            tables[algo] = {k: v for k, v in overrides.items() if k not in _ALGO_OVERRIDES}
        for table, values in tables.items():
            checks += [(False, msg) for msg in _preference_errors(table, values)]
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


def _preference_errors(table: str, values: dict[str, Any]) -> list[str]:
    """What is wrong with a preset's [preference] (or an algorithm table's preference keys)."""
    errors = []
    for key, value in values.items():
        if key not in PREFERENCE_DEFAULTS:
            errors.append(f"unknown [{table}] key {key!r}; known: {', '.join(PREFERENCE_DEFAULTS)}")
            continue
        want = type(PREFERENCE_DEFAULTS[key])
        fits = (isinstance(value, (int, float)) and not isinstance(value, bool)
                if want is float else type(value) is want)
        if not fits:
            errors.append(f"[{table}] {key} must be a {want.__name__}, got {value!r}")
    return errors


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
        if k in PREFERENCE_DEFAULTS:  # type-checked with [preference] (EnvPreset)
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
    env_kwargs = data.get("env_kwargs", {})
    _check_plain(path, "env_kwargs", env_kwargs)
    termination = data.get("termination",
                           "reset" if data["env_id"].startswith("ALE/") else "continue")
    pref = data.get("preference", {})
    _check_plain(path, "preference", pref)
    try:
        return EnvPreset(
            name=path.stem, env_id=data["env_id"], horizon=data["horizon"],
            termination=termination, env_kwargs=env_kwargs,
            termination_penalty=float(data.get("termination_penalty", 0.0)),
            unhealthy_penalty=float(data.get("unhealthy_penalty", 0.0)), clip_len=data["clip_len"],
            posture_penalty=posture_penalties(path, data.get("posture_penalty", [])),
            labels=data["labels"], steps=data["steps"], algo=data["algo"], n_envs=data["n_envs"],
            normalize_obs=data.get("normalize_obs", False), algo_kwargs=kwargs,
            algo_overrides=overrides, reward_model=rm, notes=data.get("notes", ""), path=path,
            dt=float(data["dt"]) if "dt" in data else None, preference=pref,
            sticky_actions=float(data["sticky_actions"]) if "sticky_actions" in data else None,
            score_mask=data.get("score_mask", False),
        )
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from e


def preset_from_json(doc: dict[str, Any]) -> EnvPreset:
    """Rebuild a preset from its ``config.json`` form (``dataclasses.asdict`` of it).

    A run keeps the preset it ran with, so resuming or evaluating it later does not pick up
    edits to ``envs/*.toml``. Fields a newer prefrl added get their defaults.
    """
    names = {f.name for f in dataclasses.fields(EnvPreset)}
    kw = {k: v for k, v in doc.items() if k in names}
    try:
        kw["posture_penalty"] = tuple(PosturePenalty(**d) for d in kw.get("posture_penalty", ()))
        if kw.get("path") is not None:
            kw["path"] = Path(kw["path"])
        return EnvPreset(**kw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"stored preset {doc.get('name', '?')!r} is malformed: {e}") from None


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
