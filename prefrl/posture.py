"""A graded true-reward penalty for leaving a joint range: a preset's ``posture_penalty``.

Christiano et al. 2017 (appendix A) replaced the termination of the MuJoCo tasks that can
fall by "a penalty which encourages the parameters to remain in the range". A preset lists
such penalties; :class:`prefrl.envs.FixedHorizon` adds them to the true reward every step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PosturePenalty:
    """A graded true-reward penalty for a joint outside its range.

    Every step it adds ``-weight * min(d, cap)**2``, ``d`` the distance of MuJoCo
    ``qpos[qpos]`` outside ``[low, high]`` (0 inside; a bound of None is open; ``cap`` None:
    no cap). Cap unbounded joints: Hopper's torso angle grows without limit as it somersaults,
    and an uncapped penalty then dwarfs every other reward (measured: -233 per step).

    This is Christiano et al. 2017's replacement of a termination condition, "a penalty which
    encourages the parameters to remain in the range" (appendix A). Unlike a lost alive bonus
    it also ranks two fallen clips (which one fell further, or sooner), so a teacher who judges
    by the true reward is rarely left with exact ties.

    >>> PosturePenalty(qpos=1, low=-0.25, high=0.25, weight=1.0).of([0.0, 0.75])
    -0.25
    >>> PosturePenalty(qpos=1, low=-0.25, high=0.25, cap=0.5).of([0.0, 9.0])
    -0.25
    """

    qpos: int
    low: float | None = None
    high: float | None = None
    weight: float = 1.0
    cap: float | None = None

    def __post_init__(self) -> None:
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        if self.qpos < 0 or not lo <= hi or not (
                math.isfinite(self.weight) and self.weight >= 0) or not (
                self.cap is None or (math.isfinite(self.cap) and self.cap > 0)):
            raise ValueError(f"posture_penalty needs qpos >= 0, low <= high, a finite "
                             f"weight >= 0 and a finite cap > 0 (or none), got {self}")

    def of(self, qpos: Any) -> float:
        """The penalty (``<= 0``) for the joint positions ``qpos``."""
        q = float(qpos[self.qpos])
        d = (0.0 if self.low is None else max(0.0, self.low - q)) + (
            0.0 if self.high is None else max(0.0, q - self.high))
        if self.cap is not None:
            d = min(d, self.cap)
        return -self.weight * d * d


def posture_penalties(path: Path, value: Any) -> tuple[PosturePenalty, ...]:
    """Read a preset's ``posture_penalty`` value (one table or a list of them)."""
    tables = [value] if isinstance(value, dict) else list(value)
    out = []
    for t in tables:
        if not isinstance(t, dict) or not set(t) <= {"qpos", "low", "high", "weight", "cap"} or (
                not isinstance(t.get("qpos"), int)) or not all(
                isinstance(t.get(k, 0.0), (int, float)) and not isinstance(t.get(k), bool)
                for k in ("low", "high", "weight", "cap")):
            raise ValueError(f"{path}: posture_penalty entries are tables of qpos (int), low, "
                             f"high, weight, cap (numbers), got {t!r}")
        bound = {k: float(t[k]) for k in ("low", "high", "cap") if k in t}
        out.append(PosturePenalty(int(t["qpos"]), weight=float(t.get("weight", 1.0)), **bound))
    return tuple(out)
