"""Numbers behind the figures: normalised scores, IQM, bootstrap confidence intervals.

* Normalised score of a run: ``(return - random) / (true - random)``, where ``true`` is the
  mean final return of the true-reward agent on that env and ``random`` a uniformly random
  policy's return: 0 = random, 1 = as good as RL on the true reward.
* IQM (interquartile mean, Agarwal et al. 2021, "Deep RL at the edge of the statistical
  precipice"): the mean of the middle 50% of all runs' scores pooled over tasks; with ``n``
  scores, ``floor(n / 4)`` are cut from each end, exactly ``scipy.stats.trim_mean(x, 0.25)``
  (rliable's ``aggregate_iqm``).
* Stratified bootstrap: each replicate resamples the runs of every task with replacement,
  within the task (the task set stays fixed), then recomputes the statistic; the 95% CI is
  the 2.5 and 97.5 percentiles of the replicates (percentile method, rliable's default).
  ``rliable`` does this when it is installed and every task has the same number of runs;
  otherwise :func:`stratified_bootstrap_ci` below does (same method).
* Unequal run counts (a task with more seeds than the others): each task then weighs the
  same in the IQM and the mean, each of its runs ``1 / runs of that task``, so extra seeds on
  one task sharpen that task's share instead of enlarging it. The weighted IQM keeps the
  middle half of the total weight, cutting a boundary run's weight in part.

>>> iqm([1, 2, 3, 4, 5, 6, 7, 100])   # 8 scores: drop 2 from each end, mean of 3, 4, 5, 6
4.5
>>> normalized(50.0, random=0.0, true=200.0)
0.25
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

Stat = Callable[..., np.ndarray]
"""Row-wise statistic: ``(reps, n) -> (reps,)``, with optional run weights ``w`` of shape
``(n,)`` (normalised to sum 1; None: every run weighs the same)."""


def iqm(scores: Sequence[float] | np.ndarray) -> float:
    """Interquartile mean of all values (25% trimmed from each end, floor of n/4)."""
    x = np.sort(np.asarray(scores, float).ravel())
    k = len(x) // 4
    return float(x[k:len(x) - k].mean()) if len(x) else float("nan")


def iqm_rows(x: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """:func:`iqm` of every row of a 2-D array; with run weights ``w``, the weighted IQM.

    >>> iqm_rows(np.array([[0.0, 1, 2, 3, 4, 5]]), w=np.array([1, 1, 1, 1, 2, 2]) / 8).tolist()
    [3.25]
    """
    if w is None:
        s = np.sort(x, axis=1)
        k = s.shape[1] // 4
        return s[:, k:s.shape[1] - k].mean(axis=1)
    order = np.argsort(x, axis=1, kind="stable")
    xs = np.take_along_axis(x, order, axis=1)
    ws = (np.asarray(w, float) / np.sum(w))[order]
    hi = np.cumsum(ws, axis=1)
    kept = np.clip(np.minimum(hi, 0.75) - np.maximum(hi - ws, 0.25), 0.0, None)
    return (xs * kept).sum(axis=1) / kept.sum(axis=1)


def mean_rows(x: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Mean of every row of a 2-D array; with run weights ``w``, the weighted mean."""
    return x.mean(axis=1) if w is None else x @ (np.asarray(w, float) / np.sum(w))


STATS: dict[str, Stat] = {"iqm": iqm_rows, "mean": mean_rows}


def normalized(value: float, *, random: float | None, true: float | None) -> float:
    """``(value - random) / (true - random)``; NaN when a baseline is missing or true == random."""
    if random is None or true is None or not np.isfinite([random, true]).all():
        return float("nan")
    span = true - random
    return float((value - random) / span) if abs(span) > 1e-12 else float("nan")


def stratified_bootstrap_ci(tasks: Sequence[Sequence[float]], stat: Stat = iqm_rows, *,
                            reps: int = 2000, conf: float = 0.95,
                            rng: np.random.Generator | None = None
                            ) -> tuple[float, float, float]:
    """``(estimate, low, high)`` of ``stat`` over all runs, CI by stratified bootstrap.

    ``tasks``: one sequence of run scores per task. When tasks have different run counts,
    every task weighs the same (each run ``1 / runs of its task``).

    >>> stratified_bootstrap_ci([[0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0]], mean_rows)
    (0.5, 0.5, 0.5)
    """
    rng = rng or np.random.default_rng(0)
    arrays = [np.asarray(t, float) for t in tasks if len(t)]
    if not arrays:
        return (float("nan"),) * 3
    w = None
    if len({len(a) for a in arrays}) > 1:
        w = np.concatenate([np.full(len(a), 1.0 / (len(a) * len(arrays))) for a in arrays])
    point = float(stat(np.concatenate(arrays)[None, :], w=w)[0])
    parts = [a[rng.integers(0, len(a), size=(reps, len(a)))] for a in arrays]
    reps_stat = stat(np.concatenate(parts, axis=1), w=w)
    alpha = (1 - conf) / 2
    lo, hi = np.percentile(reps_stat, [100 * alpha, 100 * (1 - alpha)])
    return point, float(lo), float(hi)


def _rliable() -> tuple[Any, Any] | None:
    """``(rliable.library, rliable.metrics)``, or None when rliable is missing or broken."""
    try:
        from rliable import library, metrics
    except Exception:  # noqa: BLE001 - ImportError, or a broken dependency (arch vs pandas)
        return None
    return library, metrics


def aggregate(scores: Mapping[str, Sequence[Sequence[float]]], *, reps: int = 2000,
              conf: float = 0.95, seed: int = 0, method: str = "auto"
              ) -> dict[str, dict[str, Any]]:
    """IQM and mean with CIs per setting; ``scores[setting]`` = run scores per task.

    ``method``: ``rliable``, ``prefrl`` (this module) or ``auto`` (rliable when it imports and
    every task has the same number of runs). Each result has ``iqm`` and ``mean`` as
    ``(estimate, low, high)``, ``tasks``, ``runs`` and ``method``.
    """
    if method not in ("auto", "rliable", "prefrl"):
        raise ValueError(f"unknown CI method {method!r}; known: auto, rliable, prefrl")
    rl = _rliable() if method in ("auto", "rliable") else None
    if method == "rliable" and rl is None:
        raise RuntimeError("rliable is not installed or does not import (pip install rliable)")
    out: dict[str, dict[str, Any]] = {}
    for setting, tasks in scores.items():
        tasks = [[float(v) for v in t if np.isfinite(v)] for t in tasks]
        tasks = [t for t in tasks if t]
        res: dict[str, Any] = {"tasks": len(tasks), "runs": sum(map(len, tasks)), "reps": reps,
                               "conf": conf}
        rectangular = bool(tasks) and len({len(t) for t in tasks}) == 1
        if rl is not None and rectangular:
            res.update(_with_rliable(rl, np.array(tasks).T, reps, conf, seed), method="rliable")
        else:
            if method == "rliable" and tasks:
                raise ValueError(f"{setting}: rliable needs the same number of runs per task")
            for name, stat in STATS.items():
                res[name] = stratified_bootstrap_ci(tasks, stat, reps=reps, conf=conf,
                                                    rng=np.random.default_rng(seed))
            res["method"] = "prefrl"
        out[setting] = res
    return out


def _with_rliable(rl: tuple[Any, Any], matrix: np.ndarray, reps: int, conf: float,
                  seed: int) -> dict[str, tuple[float, float, float]]:
    """Stratified bootstrap of a ``(runs, tasks)`` matrix by rliable.

    rliable draws from the global numpy RNG: it is seeded here and restored afterwards.
    """
    library, metrics = rl
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch's own deprecations
            points, intervals = library.get_interval_estimates(
                {"x": matrix},
                lambda m: np.array([metrics.aggregate_iqm(m), metrics.aggregate_mean(m)]),
                reps=reps, confidence_interval_size=conf)
    finally:
        np.random.set_state(state)
    p, ci = points["x"], intervals["x"]
    return {"iqm": (float(p[0]), float(ci[0, 0]), float(ci[1, 0])),
            "mean": (float(p[1]), float(ci[0, 1]), float(ci[1, 1]))}


def seed_band(curves: np.ndarray, *, reps: int = 1000, conf: float = 0.95, seed: int = 0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over seeds and its bootstrap CI at every point of ``(seeds, points)`` curves.

    NaN marks points a seed has not reached; they are left out of that point's mean.
    """
    y = np.asarray(curves, float)
    with np.errstate(all="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(y, axis=0)
            if len(y) < 2:
                return mean, mean.copy(), mean.copy()
            idx = np.random.default_rng(seed).integers(0, len(y), size=(reps, len(y)))
            boot = np.nanmean(y[idx], axis=1)
            alpha = (1 - conf) / 2
            lo, hi = np.nanpercentile(boot, [100 * alpha, 100 * (1 - alpha)], axis=0)
    return mean, lo, hi
