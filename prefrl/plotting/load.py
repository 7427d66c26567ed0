"""Read an experiment folder (``<exp>/<env>/<setting>/<seed>/``) back from its files alone.

Each cell folder is a run directory: ``metrics.csv`` (the learning curve), ``result.json``
(written when the run finished) and ``eval.json`` (the deterministic evaluation of the final
policy, written by ``prefrl bench run``). The *final return* of a cell is ``eval.json``'s
``true_return`` when present, else the mean ``true_return`` of the last 10% of the metrics rows
(at least one row).

>>> final_from_curve([1.0] * 18 + [5.0, 7.0])
6.0
>>> sorted(["true", "labels-1400", "labels-350", "rl-x"], key=setting_sort_key)
['labels-350', 'labels-1400', 'rl-x', 'true']
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prefrl.plotting.curves import load_curve

RANDOM_FILE = "random.json"


@dataclass
class CellData:
    """One run of an experiment: its curve, final return and reward-model quality."""

    env: str
    setting: str
    seed: str
    path: Path
    steps: np.ndarray
    returns: np.ndarray
    """``true_return`` per metrics row (rows without one are skipped)."""
    final_return: float
    final_source: str
    """``eval`` (eval.json), ``curve`` (last 10% of the metrics rows) or ``none``."""
    finished: bool
    corr_spearman: float | None = None
    corr_pearson: float | None = None
    reward_val_acc: float | None = None
    wall_s: float | None = None
    """The run's wall time (``result.json``), None while unfinished."""
    cpu_s: float | None = None
    """The run's CPU time (``result.json``; steadier than ``wall_s`` under load)."""


def final_from_curve(values: Iterable[float]) -> float:
    """Mean of the last 10% of ``values`` (at least the last one); NaN when empty."""
    v = np.asarray(list(values), float)
    if len(v) == 0:
        return float("nan")
    k = max(1, math.ceil(0.1 * len(v)))
    return float(v[-k:].mean())


def setting_sort_key(name: str) -> tuple[int, float, str]:
    """Label budgets ascending (``labels-350`` < ``labels-1400``), other names, ``true`` last."""
    m = re.fullmatch(r"labels-(\d+)", name)
    if m:
        return (0, float(m.group(1)), name)
    return (2, 0.0, name) if name == "true" else (1, 0.0, name)


def _seed_key(seed: str) -> tuple[int, str]:
    return (int(seed), "") if seed.isdigit() else (1 << 30, seed)


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _last_metric(path: Path, column: str) -> float | None:
    _, vals = load_curve(path, column)
    return float(vals[-1]) if len(vals) else None


def load_cell(path: Path, env: str, setting: str, seed: str) -> CellData:
    """Read one cell folder (it must hold a ``metrics.csv``)."""
    path = Path(path)
    metrics = path / "metrics.csv"
    steps, returns = load_curve(metrics, "true_return")
    result = _read_json(path / "result.json")
    ev = _read_json(path / "eval.json")
    if ev is not None and _number(ev.get("true_return")) is not None:
        final, source = float(ev["true_return"]), "eval"
    elif len(returns):
        final, source = final_from_curve(returns), "curve"
    else:
        final, source = float("nan"), "none"
    extra: dict[str, float | None] = {}
    for key in ("corr_spearman", "corr_pearson", "reward_val_acc"):
        value = _number(result.get(key)) if result else None
        extra[key] = value if value is not None else _last_metric(metrics, key)
    return CellData(env=env, setting=setting, seed=seed, path=path, steps=steps,
                    returns=returns, final_return=final, final_source=source,
                    finished=result is not None,
                    wall_s=_number(result.get("wall_s")) if result else None,
                    cpu_s=_number(result.get("cpu_s")) if result else None, **extra)


def load_experiment(exp: Path) -> list[CellData]:
    """Every cell ``<exp>/<env>/<setting>/<seed>/metrics.csv``, sorted by env, setting, seed."""
    exp = Path(exp)
    if not exp.is_dir():
        raise FileNotFoundError(f"no experiment folder {exp}")
    cells = [load_cell(m.parent, *m.parent.relative_to(exp).parts)
             for m in exp.glob("*/*/*/metrics.csv")]
    if not cells:
        raise FileNotFoundError(f"{exp} holds no runs (expected <env>/<setting>/<seed>/"
                                "metrics.csv)")
    return sorted(cells, key=lambda c: (c.env.lower(), setting_sort_key(c.setting),
                                        _seed_key(c.seed)))


def random_returns(exp: Path, envs: Iterable[str], *, compute: bool = True,
                   episodes: int = 10, seed: int = 0) -> dict[str, float | None]:
    """Random-policy true return per env, cached in ``<exp>/random.json``.

    Missing ones are computed with :func:`prefrl.evaluate.random_policy_return` when
    ``compute`` (envs whose preset cannot be loaded stay ``None``) and added to the cache.
    The cache is ``{"returns": {env: value}, ...}``; a flat ``{env: value}`` is read too.
    """
    path = Path(exp) / RANDOM_FILE
    doc = _read_json(path) or {}
    cached = doc.get("returns", doc) if isinstance(doc.get("returns", doc), dict) else {}
    out: dict[str, float | None] = {}
    added = False
    for env in envs:
        value = _number(cached.get(env))
        if value is None and compute:
            try:
                from prefrl.envs import load_preset
                from prefrl.evaluate import random_policy_return

                value = random_policy_return(load_preset(env), episodes=episodes, seed=seed)
                cached[env], added = value, True
            except Exception:  # noqa: BLE001 - no preset / env not installed: accept missing
                value = None
        out[env] = value
    if added:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"format": "prefrl-random-returns", "episodes": episodes,
                                   "seed": seed, "returns": cached}, indent=2))
        tmp.replace(path)
    return out
