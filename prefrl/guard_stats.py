"""The reward-hacking guard's statistics and its alarm hysteresis (see :mod:`prefrl.guard`).

>>> import numpy as np
>>> labelled = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 1.0, 3.0]])  # (members, clips)
>>> round(ood_ratio(labelled, labelled), 3)  # the labelled clips themselves: 1
1.0
>>> ood_ratio(np.array([[0.0, 3.0], [3.0, 0.0]]), labelled) > 4  # members disagree more
True
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


# ---------------------------------------------------------------------- statistics
def disagreement(returns: np.ndarray) -> float:
    """Mean over clips of the std across members of each clip's return; ``returns`` (K, n)."""
    r = np.asarray(returns, float)
    if r.ndim != 2 or r.shape[1] == 0:
        return float("nan")
    return float(r.std(0).mean())


def ood_ratio(recent: np.ndarray, labelled: np.ndarray) -> float:
    """Disagreement on ``recent`` clips over that on ``labelled`` clips, both ``(K, n)``.

    Each member is standardised on its labelled returns first (mean 0, std 1): offsets carry
    no preference, and the run's per-member output normalisation (fit on the agent's recent
    steps) sets each member's scale arbitrarily. NaN when undefined (one member, fewer than two
    clips, or members that agree exactly on the labelled clips).
    """
    recent, labelled = np.asarray(recent, float), np.asarray(labelled, float)
    if labelled.shape[1] < 2 or recent.shape[1] == 0 or labelled.shape[0] < 2:
        return float("nan")
    scale = labelled.std(1, keepdims=True)
    if not (scale > 0).all():
        return float("nan")
    offset = labelled.mean(1, keepdims=True)
    base = disagreement((labelled - offset) / scale)
    if not base > 0:
        return float("nan")
    return disagreement((recent - offset) / scale) / base


def time_trend(steps: np.ndarray, values: np.ndarray) -> float:
    """Pearson correlation of ``values`` with ``steps``: a slope normalised to [-1, 1]."""
    s, v = np.asarray(steps, float), np.asarray(values, float)
    if len(s) < 3 or np.std(s) == 0 or np.std(v) == 0:
        return float("nan")
    return float(np.corrcoef(s, v)[0, 1])


def divergence(trend_learned: float, trend_true: float) -> float:
    """``min(learned, -true)``: > 0 only when learned rises while true falls."""
    return float(min(trend_learned, -trend_true))


def rank_correlation(learned: np.ndarray, true: np.ndarray) -> float:
    """Spearman correlation (NaN when either side is constant or too short)."""
    learned, true = np.asarray(learned, float), np.asarray(true, float)
    if len(learned) < 3 or np.std(learned) == 0 or np.std(true) == 0:
        return float("nan")
    return float(stats.spearmanr(learned, true)[0])


# ---------------------------------------------------------------------- alarms
class Hysteresis:
    """One alarm kind with hysteresis, so that it does not flap.

    It trips after ``min_rows`` rows in a row past ``trip`` and clears after as many past
    ``clear`` (``above``: high values are bad). NaN readings change nothing.

    >>> h = Hysteresis(trip=3.0, clear=2.0, above=True, min_rows=2)
    >>> [h.update(v) for v in (4, 1, 4, 4, 2.5, 1, 1)]
    [None, None, None, 'trip', None, None, 'clear']
    """

    def __init__(self, trip: float, clear: float, *, above: bool, min_rows: int) -> None:
        if (clear > trip) if above else (clear < trip):
            raise ValueError(f"clear threshold {clear} is past trip threshold {trip}")
        self.trip, self.clear, self.above, self.min_rows = trip, clear, above, max(1, min_rows)
        self.active, self.count = False, 0

    def _past(self, v: float, t: float) -> bool:
        return v >= t if self.above else v <= t

    def update(self, value: float | None) -> str | None:
        """Feed one reading; return ``'trip'``, ``'clear'`` or None."""
        if value is None or math.isnan(value):
            return None
        if not self.active:
            self.count = self.count + 1 if self._past(value, self.trip) else 0
        else:
            back = (value < self.clear) if self.above else (value > self.clear)
            self.count = self.count + 1 if back else 0
        if self.count < self.min_rows:
            return None
        self.active, self.count = not self.active, 0
        return "trip" if self.active else "clear"
