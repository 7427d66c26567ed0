"""Synthetic teachers that judge clips by their hidden true reward.

:class:`TeacherConfig` covers the usual simulated-teacher models: Christiano et al. (2017)
(perfect, or a 10% random answer) and BPref (Lee et al. 2021: Boltzmann-rational, myopic,
mistake, equal and skip teachers). The decision for a pair with clip returns ``R_l``, ``R_r``
runs: skip check, equal check, Boltzmann/perfect choice, flip (mistake), random answer.

>>> import numpy as np
>>> from prefrl.types import Clip, ClipPair
>>> def clip(r):
...     return Clip(obs=np.zeros((3, 1)), acts=np.zeros((3, 1)), true_rews=np.full(3, r),
...                 env_id="toy")
>>> teacher = SyntheticOracle("perfect", rng=np.random.default_rng(0))
>>> teacher.answer(ClipPair(clip(1.0), clip(2.0))).mu
1.0
>>> teacher.label(ClipPair(clip(3.0), clip(2.0)), query_id=7).annotator
'synthetic:perfect'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from prefrl.oracles.base import Oracle
from prefrl.types import Answer, Clip, ClipPair, Label

SEEN_RETURNS_MAX = 10_000  # how many recent clip returns the skip quantile looks at


@dataclass(frozen=True)
class TeacherConfig:
    """Parameters of a simulated teacher (all defaults: a perfect teacher).

    ``beta``: Boltzmann rationality, P(right) = sigmoid(beta * (R_r - R_l)); ``inf`` =
    deterministic. ``gamma``: myopia, a clip's return is ``sum_t gamma**(T-1-t) * r_t``.
    ``eps_flip``: probability a left/right answer is flipped. ``eps_random``: probability the
    answer is replaced by a uniformly random left/right. ``equal_frac``: answer EQUAL when
    ``|R_l - R_r| < equal_frac * std`` of the clip returns seen so far (``equal_threshold``,
    absolute, overrides it). ``skip_quantile``: answer SKIP when ``max(R_l, R_r)`` is below this
    quantile of the returns seen so far, 0 disables (``skip_threshold``, absolute, overrides it).
    """

    beta: float = math.inf
    gamma: float = 1.0
    eps_flip: float = 0.0
    eps_random: float = 0.0
    equal_frac: float = 0.0
    equal_threshold: float | None = None
    skip_quantile: float = 0.0
    skip_threshold: float | None = None

    def __post_init__(self) -> None:
        def bad(field: str, want: str) -> ValueError:
            return ValueError(f"TeacherConfig.{field} must be {want}, got {getattr(self, field)!r}")

        if math.isnan(self.beta) or self.beta < 0:
            raise bad("beta", ">= 0 (inf for a deterministic teacher)")
        if not 0.0 < self.gamma <= 1.0:
            raise bad("gamma", "in (0, 1]")
        for f in ("eps_flip", "eps_random"):
            if not 0.0 <= getattr(self, f) <= 1.0:
                raise bad(f, "in [0, 1]")
        if not (math.isfinite(self.equal_frac) and self.equal_frac >= 0):
            raise bad("equal_frac", "finite and >= 0")
        if self.equal_threshold is not None and not (
            math.isfinite(self.equal_threshold) and self.equal_threshold >= 0
        ):
            raise bad("equal_threshold", "None or finite and >= 0")
        if not 0.0 <= self.skip_quantile < 1.0:
            raise bad("skip_quantile", "in [0, 1)")
        if self.skip_threshold is not None and not math.isfinite(self.skip_threshold):
            raise bad("skip_threshold", "None or finite")


TEACHER_PRESETS: dict[str, TeacherConfig] = {
    "perfect": TeacherConfig(),
    "paper": TeacherConfig(eps_random=0.1),
    "noisy": TeacherConfig(beta=1.0),
    "mistake": TeacherConfig(eps_flip=0.1),
    "myopic": TeacherConfig(gamma=0.9),
    "equal": TeacherConfig(equal_frac=0.1),
    "skip": TeacherConfig(skip_quantile=0.1),
}


def teacher_config(name: str) -> TeacherConfig:
    """Return the preset teacher called ``name`` (see :data:`TEACHER_PRESETS`).

    >>> teacher_config("paper").eps_random
    0.1
    """
    try:
        return TEACHER_PRESETS[name]
    except KeyError:
        valid = ", ".join(TEACHER_PRESETS)
        raise ValueError(f"unknown teacher preset {name!r}; valid names: {valid}") from None


class SyntheticOracle(Oracle):
    """A simulated teacher that judges pairs by ``clip.true_rews`` only.

    Reproducible: the same rng seed and the same sequence of pairs give the same answers;
    :meth:`state_dict` / :meth:`load_state_dict` carry the RNG and running statistics over.
    """

    def __init__(self, config: TeacherConfig | str = "perfect", *, rng: np.random.Generator):
        if isinstance(config, str):
            self.preset: str | None = config
            self.config = teacher_config(config)
        elif isinstance(config, TeacherConfig):
            self.config = config
            self.preset = next((k for k, v in TEACHER_PRESETS.items() if v == config), None)
        else:
            raise TypeError(f"config must be a TeacherConfig or a preset name, got {config!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {type(rng).__name__}")
        self.rng = rng
        self.name = f"synthetic:{self.preset or 'custom'}"
        self._n = 0  # Welford running stats of every clip return judged
        self._mean = 0.0
        self._m2 = 0.0
        self._seen = np.zeros(SEEN_RETURNS_MAX, np.float64)  # ring buffer of recent returns
        self._seen_pos = 0
        self._seen_count = 0
        self._weights: dict[int, np.ndarray] = {}

    # ---------------------------------------------------------------- returns
    def clip_return(self, clip: Clip) -> float:
        """Return the clip's return as this teacher perceives it (discounted by ``gamma``)."""
        r = np.asarray(clip.true_rews, np.float64)
        if self.config.gamma == 1.0:
            return float(r.sum())
        w = self._weights.get(len(r))
        if w is None:
            w = self.config.gamma ** np.arange(len(r) - 1, -1, -1, dtype=np.float64)
            self._weights[len(r)] = w
        return float(w @ r)

    def _observe(self, x: float) -> None:
        self._n += 1
        delta = x - self._mean
        self._mean += delta / self._n
        self._m2 += delta * (x - self._mean)
        self._seen[self._seen_pos] = x
        self._seen_pos = (self._seen_pos + 1) % SEEN_RETURNS_MAX
        self._seen_count = min(self._seen_count + 1, SEEN_RETURNS_MAX)

    @property
    def return_std(self) -> float:
        """Population std of the clip returns judged so far (0 before any)."""
        return math.sqrt(self._m2 / self._n) if self._n > 0 else 0.0

    # ---------------------------------------------------------------- answers
    def answer(self, pair: ClipPair) -> Answer:
        """Judge one pair by true return (updates the running statistics)."""
        c = self.config
        rl, rr = self.clip_return(pair.left), self.clip_return(pair.right)
        self._observe(rl)
        self._observe(rr)
        diff = rr - rl
        skip_thr = c.skip_threshold
        if skip_thr is None and c.skip_quantile > 0:
            skip_thr = float(np.quantile(self._seen[: self._seen_count], c.skip_quantile))
        eq_thr = c.equal_threshold
        if eq_thr is None and c.equal_frac > 0:
            eq_thr = c.equal_frac * self.return_std
        if skip_thr is not None and max(rl, rr) < skip_thr:
            ans = Answer.SKIP
        elif eq_thr is not None and abs(diff) < eq_thr:
            ans = Answer.EQUAL
        elif math.isinf(c.beta):
            ans = Answer.RIGHT if diff > 0 else Answer.LEFT if diff < 0 else Answer.EQUAL
        else:
            p_right = 0.5 * (1.0 + math.tanh(0.5 * c.beta * diff))  # = sigmoid(beta * diff)
            ans = Answer.RIGHT if self.rng.random() < p_right else Answer.LEFT
        if c.eps_flip > 0 and ans in (Answer.LEFT, Answer.RIGHT) and self.rng.random() < c.eps_flip:
            ans = Answer.RIGHT if ans is Answer.LEFT else Answer.LEFT
        if c.eps_random > 0 and self.rng.random() < c.eps_random:
            ans = Answer.RIGHT if self.rng.random() < 0.5 else Answer.LEFT
        return ans

    def label(self, pair: ClipPair, query_id: int | None = None) -> Label:
        """Answer ``pair`` and wrap the answer in a :class:`~prefrl.types.Label`."""
        return Label(
            left=pair.left.hash,
            right=pair.right.hash,
            answer=self.answer(pair),
            source="synthetic",
            annotator=self.name,
            response_time_s=0.0,
            query_id=query_id,
        )

    # ------------------------------------------------------------ persistence
    def state_dict(self) -> dict[str, Any]:
        """RNG state and running statistics as JSON-able Python values."""
        order = (np.arange(self._seen_count) + self._seen_pos - self._seen_count) % SEEN_RETURNS_MAX
        return {
            "preset": self.preset or "custom",
            "rng_state": self.rng.bit_generator.state,
            "n": self._n,
            "mean": self._mean,
            "m2": self._m2,
            "seen": self._seen[order].tolist(),  # oldest first
        }

    def load_state_dict(self, d: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned, so answers continue identically."""
        self.rng.bit_generator.state = d["rng_state"]
        self._n = int(d["n"])
        self._mean = float(d["mean"])
        self._m2 = float(d["m2"])
        seen = np.asarray(d["seen"], np.float64)[-SEEN_RETURNS_MAX:]
        self._seen = np.zeros(SEEN_RETURNS_MAX, np.float64)
        self._seen[: len(seen)] = seen
        self._seen_count = len(seen)
        self._seen_pos = len(seen) % SEEN_RETURNS_MAX
