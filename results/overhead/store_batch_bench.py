"""Seconds to store a run's queries and synthetic labels, one commit each or one per ask.

One commit per query and per label is the loop before; one transaction per ask is
``LabelStore.add_queries``.

    python results/overhead/store_batch_bench.py [--labels 1400] [--per-ask 35] [--clip-len 38]

Clips are shaped like Swimmer's (8 obs, 2 actions, ``--clip-len`` steps, qpos/qvel render
state); 35 labels per ask is what a 1,400-label, 300k-step run asks per reward update. Prints
wall and CPU seconds of each way, best of ``--repeats``; every store is a fresh SQLite file
(WAL, synchronous=FULL, as runs open it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from prefrl.store import LabelStore
from prefrl.types import Answer, Clip, ClipPair, Label


def clips(n: int, t: int, seed: int = 0) -> list[Clip]:
    rng = np.random.default_rng(seed)
    return [Clip(obs=rng.normal(size=(t, 8)).astype(np.float32),
                 acts=rng.normal(size=(t, 2)).astype(np.float32),
                 true_rews=rng.normal(size=t).astype(np.float32), env_id="Swimmer-v5",
                 render_state={"qpos": rng.normal(size=(t, 5)), "qvel": rng.normal(size=(t, 5))},
                 source_run="bench", step=i) for i in range(n)]


def answer(pair: ClipPair, qid: int) -> Label:
    return Label(pair.left.hash, pair.right.hash, Answer.LEFT, source="synthetic", query_id=qid)


def one_by_one(store: LabelStore, pairs: list[ClipPair], per_ask: int) -> None:
    for p in pairs:
        store.add_label(answer(p, store.add_query(p, "disagreement", 0.5)))


def batched(store: LabelStore, pairs: list[ClipPair], per_ask: int) -> None:
    for i in range(0, len(pairs), per_ask):
        store.add_queries([(p, 0.5) for p in pairs[i:i + per_ask]], "disagreement",
                          answer=answer)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--labels", type=int, default=1400)
    ap.add_argument("--per-ask", type=int, default=35)
    ap.add_argument("--clip-len", type=int, default=38)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    cs = clips(2 * a.labels, a.clip_len)
    pairs = [ClipPair(cs[2 * i], cs[2 * i + 1]) for i in range(a.labels)]
    for name, way in (("one commit per query and label", one_by_one),
                      ("one transaction per ask", batched)):
        best = (float("inf"), float("inf"))
        for _ in range(a.repeats):
            with tempfile.TemporaryDirectory() as d:
                store = LabelStore(Path(d) / "labels.sqlite")
                w, c = time.perf_counter(), time.process_time()
                way(store, pairs, a.per_ask)
                best = min(best, (time.perf_counter() - w, time.process_time() - c))
                assert store.n_labels() == a.labels
                store.close()
        print(f"{name:32s} {a.labels} labels: wall {best[0]:6.2f} s  CPU {best[1]:6.2f} s")


if __name__ == "__main__":
    main()
