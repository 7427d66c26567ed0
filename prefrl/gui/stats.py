"""Labelling statistics: speed, agreement between annotators and with the synthetic teacher.

Answers are compared in one orientation (the pair's sorted clip hashes), so a pair shown as
(a, b) to one person and (b, a) to another is compared correctly. Skips are left out of
agreement; "equal" counts as an answer (agreeing only with "equal"). Agreement with the
teacher uses :class:`~prefrl.oracles.SyntheticOracle` with the ``perfect`` preset, which
compares the true returns stored in the clips.

>>> from prefrl.types import Answer, Label
>>> labs = [Label("a", "b", Answer.LEFT, "human", "ann"), Label("b", "a", Answer.RIGHT, "human",
...         "bob"), Label("c", "d", Answer.LEFT, "human", "ann"),
...         Label("c", "d", Answer.RIGHT, "human", "bob")]
>>> inter_annotator(labs)["agreement"]
0.5
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from prefrl.oracles.synthetic import SyntheticOracle
from prefrl.types import Answer, Clip, ClipPair, Label

RATE_WINDOW_S = 3600.0


def canonical(label: Label) -> str:
    """The label's answer as if the pair were shown in sorted-hash order."""
    if label.left < label.right or label.answer in (Answer.EQUAL, Answer.SKIP):
        return label.answer.value
    return Answer.RIGHT.value if label.answer is Answer.LEFT else Answer.LEFT.value


def labels_per_hour(times: Iterable[float], now: float | None = None) -> float:
    """Labelling rate over the last hour: labels in it / time since the first of them.

    The span is at least one minute, so a first quick answer does not read as thousands/hour.

    >>> now = 10_000.0
    >>> labels_per_hour([now - 1800 + 180 * i for i in range(10)], now)
    20.0
    """
    now = time.time() if now is None else now
    recent = [t for t in times if now - RATE_WINDOW_S <= t <= now]
    if not recent:
        return 0.0
    return len(recent) * 3600.0 / max(now - min(recent), 60.0)


def inter_annotator(labels: Iterable[Label]) -> dict[str, Any]:
    """Agreement of human annotators on the pairs at least two of them answered (no skips)."""
    by_pair: dict[str, dict[str, str]] = {}
    for lab in labels:
        if lab.source == "human" and lab.answer is not Answer.SKIP:
            by_pair.setdefault(lab.key, {})[lab.annotator] = canonical(lab)
    per: dict[tuple[str, str], list[int]] = {}
    n_pairs = 0
    for answers in by_pair.values():
        if len(answers) < 2:
            continue
        n_pairs += 1
        for a, b in itertools.combinations(sorted(answers), 2):
            per.setdefault((a, b), []).append(int(answers[a] == answers[b]))
    flat = [x for v in per.values() for x in v]
    return {
        "pairs": n_pairs, "comparisons": len(flat),
        "agreement": float(np.mean(flat)) if flat else None,
        "by_pair": [{"a": a, "b": b, "n": len(v), "agreement": float(np.mean(v))}
                    for (a, b), v in sorted(per.items())],
    }


def teacher_agreement(labels: Iterable[Label], clips: Mapping[str, Clip]) -> dict[str, Any]:
    """Agreement of each annotator's left/right/equal answers with a perfect synthetic teacher.

    ``clips`` maps hashes to clips; labels whose clips are missing are left out.
    """
    teacher = SyntheticOracle("perfect", rng=np.random.default_rng(0))
    per: dict[str, list[int]] = {}
    for lab in labels:
        if lab.source != "human" or lab.answer is Answer.SKIP:
            continue
        left, right = clips.get(lab.left), clips.get(lab.right)
        if left is None or right is None:
            continue
        truth = teacher.answer(ClipPair(left, right))
        per.setdefault(lab.annotator, []).append(int(truth is lab.answer))
    flat = [x for v in per.values() for x in v]
    return {
        "available": True, "teacher": "perfect", "n": len(flat),
        "agreement": float(np.mean(flat)) if flat else None,
        "by_annotator": {k: {"n": len(v), "agreement": float(np.mean(v))}
                         for k, v in sorted(per.items())},
    }


def has_true_reward(clips: Iterable[Clip]) -> bool:
    """Whether the clips carry a real true reward (not all zero, all finite)."""
    rets = [c.true_return for c in clips]
    return bool(rets) and all(np.isfinite(rets)) and any(r != 0.0 for r in rets)


def annotator_summary(labels: Iterable[Label], now: float | None = None) -> dict[str, Any]:
    """Per human annotator: labels, skips, equals, labels per hour, median response time."""
    groups: dict[str, list[Label]] = {}
    for lab in labels:
        if lab.source == "human":
            groups.setdefault(lab.annotator, []).append(lab)
    out = {}
    for name, labs in sorted(groups.items()):
        rts = [lab.response_time_s for lab in labs if lab.response_time_s is not None]
        out[name] = {
            "labels": len(labs),
            "skips": sum(lab.answer is Answer.SKIP for lab in labs),
            "equal": sum(lab.answer is Answer.EQUAL for lab in labs),
            "labels_per_hour": round(labels_per_hour([lab.created_at for lab in labs], now), 1),
            "median_response_s": round(statistics.median(rts), 2) if rts else None,
        }
    return out


def compute_stats(labels: list[Label], load_clips: Callable[[list[str]], dict[str, Clip]],
                  n_pending: int, now: float | None = None) -> dict[str, Any]:
    """Everything the ``/stats`` endpoint shows; ``load_clips`` fetches clips by hash."""
    human = [lab for lab in labels if lab.source == "human"]
    hashes = sorted({h for lab in human for h in (lab.left, lab.right)})
    clips = load_clips(hashes) if hashes else {}
    teacher: dict[str, Any] = {"available": False, "teacher": "perfect", "n": 0,
                               "agreement": None, "by_annotator": {}}
    if has_true_reward(clips.values()):
        teacher = teacher_agreement(human, clips)
    return {
        "totals": {"labels": len(labels), "human_labels": len(human),
                   "synthetic_labels": len(labels) - len(human), "pending": n_pending},
        "annotators": annotator_summary(human, now),
        "inter_annotator": inter_annotator(human),
        "teacher": teacher,
    }
