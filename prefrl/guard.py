"""Reward-hacking guard: notice when the agent goes where the reward model was never taught.

At every metrics row :class:`HackGuard` scores the agent's newest clips (from the candidate
pool) with the live ensemble and reports (stable names, :data:`GUARD_COLUMNS`):

* ``hack_ood``: the ensemble's disagreement on the agent's ``recent_clips`` newest clips divided
  by its disagreement on labelled clips. Disagreement of a clip = std across members of its
  predicted return, averaged over clips. Each member's returns are first standardised on the
  labelled clips (mean 0, std 1): a preference model only sees return *differences*, and the
  per-member output normalisation (fit on the agent's recent steps) sets each member's scale
  arbitrarily, so neither offset nor scale should count as disagreement. ~1 where the agent
  stays in taught territory; it rises when the agent leaves it. Works with human teachers too.
* With a synthetic teacher (the true reward is known):
  ``hack_corr``: Spearman correlation of learned vs true return on the same recent clips (rank
  based: fall penalties are outliers, and teachers judge order). Left blank when the recent
  clips' true returns barely differ (std < ``min_true_spread`` x that of the labelled clips):
  a converged agent's clips are all alike and their correlation is noise.
  ``hack_trend_learned`` / ``hack_trend_true``: Pearson correlation of clip return with the
  clip's start step over the agent's last ``trend_clips`` clips, both rescored by the current
  model (a slope normalised to [-1, 1]; the episodic learned return is no use here, because
  every reward update re-normalises it). ``hack_trend = min(learned, -true)`` is > 0 only when
  the learned return rises while the true one falls: the proxy-vs-gold divergence of Gao et
  al. 2022.

Alarms (defaults in :class:`GuardConfig`; hysteresis: a kind trips after ``min_rows``
consecutive rows past its trip threshold and clears after ``min_rows`` rows back past its
clear threshold, so one noisy row neither raises nor drops it):

* ``ood``: ``hack_ood >= 4`` (clears < 2.5). On healthy runs the ratio stays below 3 (measured,
  seed 0: Pendulum 60k steps max 2.3; HalfCheetah 50k steps max 2.9, briefly, when the agent
  found a faster gait before labels caught up), because the schedule keeps labelling where the
  agent goes. On the exploit of ``tests/ridge.py`` it reads 4-11 for thousands of steps.
* ``corr``: ``hack_corr < 0`` (clears > 0.3): the model ranks the agent's own clips opposite
  to the truth, so improving the learned reward makes the true one worse.
* ``divergence``: ``hack_trend > 0.3`` (clears < 0.1). With 200 clips a time correlation of
  0.3 is > 4 standard errors from none; both trends must pass it, in opposite directions.

A trip is recorded as ``{step, kind, value, threshold}`` (``alarms`` in ``result.json``).
The response ``on_hack="ask"`` brings labels forward from the schedule (those due over the
next ``ask_ahead`` share of the run, at least ``ask_min``, never past the budget: the schedule
then asks nothing until its target catches up, so the run still spends exactly its budget)
and asks them about pairs of the agent's newest clips, chosen by the run's selector.

A run on a frozen reward model (``--reward-model-frozen``) has no learner: the guard then
watches a :class:`FrozenWatch`, the clips the reward wrapper records against the model folder's
reference clips (:class:`~prefrl.reward.model.ReferenceClips`); it has no labels to ask, so its
alarms only warn.
"""

from __future__ import annotations

import math
from collections.abc import Container
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from prefrl.guard_stats import (
    Hysteresis,
    divergence,
    ood_ratio,
    rank_correlation,
    time_trend,
)
from prefrl.query import clip_returns
from prefrl.reward.dataset import ClipTable
from prefrl.segments import SegmentBuffer
from prefrl.types import Clip, ClipPair, pair_key

if TYPE_CHECKING:
    from prefrl.learner import PreferenceLearner
    from prefrl.reward.ensemble import RewardEnsemble
    from prefrl.reward.model import ReferenceClips
    from prefrl.store import LabelStore

OnHack = Literal["ask", "none"]
ON_HACK = ("ask", "none")
GUARD_COLUMNS = ["hack_ood", "hack_corr", "hack_trend", "hack_trend_learned", "hack_trend_true",
                 "hack_alarm"]
"""Metrics-row columns the guard fills (``hack_alarm``: active alarm kinds joined by '+')."""


@dataclass
class GuardConfig:
    """Thresholds and sizes of the guard (see the module docstring for the reasoning)."""

    on_hack: OnHack = "ask"
    recent_clips: int = 100
    """The agent's newest clips measured for ``hack_ood`` and ``hack_corr``."""
    trend_clips: int = 200
    """Sliding window of the agent's newest clips for the trends."""
    labelled_clips: int = 200
    """Labelled clips the ood ratio is measured against (a fixed hash-ordered sample)."""
    min_clips: int = 20
    """Fewer recent (or labelled) clips than this: no readings."""
    ood_trip: float = 4.0
    ood_clear: float = 2.5
    corr_trip: float = 0.0
    corr_clear: float = 0.3
    trend_trip: float = 0.3
    trend_clear: float = 0.1
    min_rows: int = 3
    min_true_spread: float = 0.1
    ask_ahead: float = 0.1
    """Response: bring forward the labels due over this share of the run's steps."""
    ask_share: float = 0.1
    """... or at least this share of the labels left, and at least ``ask_min``."""
    ask_min: int = 5
    respond_every: int = 5
    """While an alarm stays on, respond again every this many rows."""

    def __post_init__(self) -> None:
        if self.on_hack not in ON_HACK:
            raise ValueError(f"on_hack must be one of {', '.join(ON_HACK)}, got {self.on_hack!r}")


def labelled_sample(store: LabelStore, n: int) -> list[str]:
    """The ``n`` smallest hashes of labelled clips: the guard's stable random sample of them."""
    return sorted({h for r in store.label_rows() for h in (r[1], r[2])})[:n]


@dataclass
class FrozenWatch:
    """What the guard watches in a run on a frozen reward model (no learner, no labels)."""

    ensemble: RewardEnsemble
    buffer: SegmentBuffer
    """The agent's clips, recorded by the reward wrapper."""
    reference: ReferenceClips
    """The labelled clips the model was trained on (a sample, from the model folder)."""
    synthetic: bool = True
    """Whether the env's reward is the goal (False for a model taught by people)."""

    @classmethod
    def for_model(cls, ensemble: RewardEnsemble, reference: ReferenceClips, clip_len: int, *,
                  synthetic: bool, max_bytes: int, seed: int) -> FrozenWatch:
        """A watch with a fresh pool (512 clips at most) for the agent's clips."""
        buffer = SegmentBuffer(clip_len, capacity=512, max_bytes=max_bytes,
                               rng=np.random.default_rng(seed))
        return cls(ensemble, buffer, reference, synthetic=synthetic)


class HackGuard:
    """Readings, alarms and the ``ask`` response of one run (see the module docstring).

    Watches a :class:`~prefrl.learner.PreferenceLearner`, or with ``frozen`` a run on a frozen
    reward model: the same readings and alarms, against the model's reference clips; with no
    labels to ask, its alarms only warn.
    """

    def __init__(self, learner: PreferenceLearner | None, config: GuardConfig | None = None,
                 *, frozen: FrozenWatch | None = None) -> None:
        if (learner is None) == (frozen is None):
            raise ValueError("HackGuard watches either a learner or a frozen model")
        self.learner, self.frozen, self.config = learner, frozen, config or GuardConfig()
        c = self.config
        self.synthetic = (learner.oracle is not None if learner is not None
                          else self._frozen().synthetic)
        self.kinds = {
            "ood": Hysteresis(c.ood_trip, c.ood_clear, above=True, min_rows=c.min_rows),
            "corr": Hysteresis(c.corr_trip, c.corr_clear, above=False, min_rows=c.min_rows),
            "divergence": Hysteresis(c.trend_trip, c.trend_clear, above=True,
                                     min_rows=c.min_rows),
        }
        self.alarms: list[dict[str, Any]] = []
        self.rows_since_response = 0
        self._ref = ClipTable()
        self._ref_true: dict[str, float] = {}
        self._ref_scores: tuple[Any, np.ndarray] | None = None

    @property
    def ensemble(self) -> RewardEnsemble:
        """The ensemble the agent is paid by."""
        return self.learner.ensemble if self.learner is not None else self._frozen().ensemble

    def _frozen(self) -> FrozenWatch:
        assert self.frozen is not None
        return self.frozen

    def _learner(self) -> PreferenceLearner:
        if self.learner is None:
            raise RuntimeError("a guard on a frozen reward model has no labels to ask")
        return self.learner

    # ------------------------------------------------------------------ readings
    def agent_clips(self, n: int) -> list[Clip]:
        """The agent's ``n`` newest pooled clips, oldest first (random-policy clips left out)."""
        buf = self.learner.buffer if self.learner is not None else self._frozen().buffer
        out = [c for c in buf.recent(n + 64) if not _random_policy(c)]
        return out[-n:]

    def _labelled(self) -> list[str]:
        """Sync the labelled reference sample (:func:`labelled_sample`, or the frozen model's)."""
        if self.learner is None:
            return self._frozen_reference()
        hashes = labelled_sample(self.learner.store, self.config.labelled_clips)
        missing = [h for h in hashes if h not in self._ref]
        keep = set(hashes)
        for h in [h for h in self._ref.hashes() if h not in keep]:
            self._ref.remove(h)
            self._ref_true.pop(h, None)
        for clip in self.learner.store.get_clips(missing, render_state=False):
            self._ref.add(clip.hash, clip.obs, clip.acts)
            self._ref_true[clip.hash] = float(clip.true_return)
        return hashes

    def _frozen_reference(self) -> list[str]:
        ref = self._frozen().reference
        n = min(len(ref), self.config.labelled_clips)
        hashes = [f"reference-{i}" for i in range(n)]
        if len(self._ref_true) != n:
            for i, h in enumerate(hashes):
                self._ref.add(h, ref.obs[i], ref.acts[i])
                self._ref_true[h] = float(ref.true_return[i])
        return hashes

    def _labelled_returns(self, ens: RewardEnsemble, hashes: list[str]) -> np.ndarray:
        # rescored after every update, and after every refit of the output normalisation
        # (a frozen model's follows the agent's recent steps)
        key = (self.learner.n_updates if self.learner is not None else 0,
               tuple(ens.out_mean.tolist()), tuple(ens.out_std.tolist()), hash(tuple(hashes)))
        if self._ref_scores is None or self._ref_scores[0] != key:
            parts = []
            for i in range(0, len(hashes), 64):
                obs, acts = self._ref.gather(hashes[i:i + 64])
                parts.append(ens.clip_returns(obs, acts))
            self._ref_scores = (key, np.concatenate(parts, axis=1))
        return self._ref_scores[1]

    def readings(self) -> dict[str, float | None]:
        """The guard's numbers now (None where undefined)."""
        c = self.config
        out: dict[str, float | None] = dict.fromkeys(GUARD_COLUMNS[:-1])
        window = self.agent_clips(max(c.trend_clips, c.recent_clips))
        hashes = self._labelled()
        if len(window) < c.min_clips or len(hashes) < c.min_clips:
            return out
        ens = self.ensemble
        rets = clip_returns(ens, window)  # (K, n), oldest first
        recent = rets[:, -c.recent_clips:]
        out["hack_ood"] = _num(ood_ratio(recent, self._labelled_returns(ens, hashes)))
        if not self.synthetic:
            return out
        true = np.array([cl.true_return for cl in window], float)
        true_recent = true[-c.recent_clips:]
        ref_spread = float(np.std(list(self._ref_true.values())))
        if np.std(true_recent) >= c.min_true_spread * ref_spread:
            out["hack_corr"] = _num(rank_correlation(recent.mean(0), true_recent))
        trend_n = min(c.trend_clips, len(window))
        steps = np.array([cl.step for cl in window[-trend_n:]], float)
        tl = time_trend(steps, rets[:, -trend_n:].mean(0))
        tt = time_trend(steps, true[-trend_n:])
        out["hack_trend_learned"], out["hack_trend_true"] = _num(tl), _num(tt)
        if not (math.isnan(tl) or math.isnan(tt)):
            out["hack_trend"] = divergence(tl, tt)
        return out

    # ------------------------------------------------------------------ alarms
    def observe(self, step: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Readings for a metrics row, and the alarms that tripped at this row."""
        r = self.readings()
        c = self.config
        values = {"ood": r["hack_ood"], "corr": r["hack_corr"], "divergence": r["hack_trend"]}
        thresholds = {"ood": c.ood_trip, "corr": c.corr_trip, "divergence": c.trend_trip}
        tripped = []
        for kind, h in self.kinds.items():
            if h.update(values[kind]) == "trip":
                alarm = {"step": int(step), "kind": kind, "value": float(values[kind] or 0.0),
                         "threshold": thresholds[kind]}
                self.alarms.append(alarm)
                tripped.append(alarm)
        row: dict[str, Any] = dict(r)
        row["hack_alarm"] = "+".join(self.active()) or None
        return row, tripped

    def active(self) -> list[str]:
        """Alarm kinds that are on now."""
        return [k for k, h in self.kinds.items() if h.active]

    # ------------------------------------------------------------------ response
    def respond(self, step: int, tripped: list[dict[str, Any]]) -> int:
        """Apply ``on_hack`` after :meth:`observe`; return the labels asked (0 for none)."""
        self.rows_since_response += 1
        if self.config.on_hack == "none" or not self.active() or self.learner is None:
            return 0
        if not tripped and self.rows_since_response < self.config.respond_every:
            return 0
        self.rows_since_response = 0
        return self.ask_recent(step)

    def labels_to_bring_forward(self, step: int) -> int:
        """Labels to ask now (see :class:`GuardConfig`), never more than the budget has left."""
        lr, c = self._learner(), self.config
        sched, asked = lr.schedule, lr.store.n_queries()
        ahead = min(sched.total_steps, step + int(math.ceil(c.ask_ahead * sched.total_steps)))
        left = sched.total - asked
        n = max(sched.target(ahead) - asked, math.ceil(c.ask_share * left), c.ask_min)
        return max(0, min(n, left))

    def ask_recent(self, step: int) -> int:
        """Ask labels brought forward about pairs of the agent's newest clips."""
        n = self.labels_to_bring_forward(step)
        clips = self.agent_clips(self.config.recent_clips)
        if n <= 0 or len(clips) < 2:
            return 0
        lr = self._learner()
        return lr.ask(step, n=n, source=NewestPairs(clips, lr.buffer.clips()))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """JSON-able state (alarms, hysteresis); the labelled sample is rebuilt from the store."""
        return {"alarms": list(self.alarms), "rows_since_response": self.rows_since_response,
                "kinds": {k: {"active": h.active, "count": h.count}
                          for k, h in self.kinds.items()},
                "config": asdict(self.config)}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Inverse of :meth:`state_dict` (None: a fresh guard)."""
        if not state:
            return
        self.alarms = [dict(a) for a in state.get("alarms", [])]
        self.rows_since_response = int(state.get("rows_since_response", 0))
        for k, s in state.get("kinds", {}).items():
            if k in self.kinds:
                self.kinds[k].active, self.kinds[k].count = bool(s["active"]), int(s["count"])


class NewestPairs:
    """Candidate pairs with one of the agent's newest clips on at least one side.

    The other side is drawn from the whole pool (older and random-policy clips included), so a
    label tells the model how the new region compares with what it already knows, not only how
    the new clips, often much alike, compare with each other. Sides are random.
    """

    def __init__(self, newest: list[Clip], pool: list[Clip]) -> None:
        self.newest = newest
        self.pool = pool or newest

    def sample_pairs(self, n: int, rng: np.random.Generator | None = None,
                     exclude_keys: Container[str] = ()) -> list[ClipPair]:
        """Up to ``n`` distinct pairs whose keys are not in ``exclude_keys``."""
        rng = rng or np.random.default_rng()
        out: dict[str, ClipPair] = {}
        for _ in range(20 * n + 100):
            if len(out) >= n:
                break
            a = self.newest[int(rng.integers(len(self.newest)))]
            b = self.pool[int(rng.integers(len(self.pool)))]
            key = pair_key(a.hash, b.hash)
            if a.hash == b.hash or key in out or key in exclude_keys:
                continue
            out[key] = ClipPair(a, b) if rng.random() < 0.5 else ClipPair(b, a)
        return list(out.values())


def _random_policy(c: Clip) -> bool:
    return c.source_run == "random" or c.source_run.endswith(":random")


def _num(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def reading_summary(rows: list[dict[str, str]]) -> dict[str, Any]:
    """Extremes of a run's guard readings (``MetricsLog.read()`` rows), and its alarm rows."""
    def col(k: str) -> list[float]:
        return [float(r[k]) for r in rows if r.get(k)]

    ood, corr, trend = col("hack_ood"), col("hack_corr"), col("hack_trend")
    return {"rows": len(rows), "hack_ood_max": max(ood, default=None),
            "hack_corr_min": min(corr, default=None), "hack_trend_max": max(trend, default=None),
            "alarm_rows": sum(1 for r in rows if r.get("hack_alarm")),
            "first_alarm_step": next((int(float(r["step"])) for r in rows
                                      if r.get("hack_alarm")), None)}


def main(argv: list[str] | None = None) -> int:
    """``python -m prefrl.guard RUN_DIR...``: print each run's :func:`reading_summary`."""
    import json
    import sys
    from pathlib import Path

    from prefrl.rundir import MetricsLog

    for d in (sys.argv[1:] if argv is None else argv):
        path = Path(d) / "metrics.csv"
        if not path.is_file():
            print(f"{d}: no metrics.csv", file=sys.stderr)
            return 2
        print(d, json.dumps(reading_summary(MetricsLog(path).read())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
