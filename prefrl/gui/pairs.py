"""Which pair an annotator sees next: pending questions, a few re-asked ones, nothing twice.

Rules, for annotator ``a``:

1. never a pair ``a`` already has a live label for (an undo makes the pair available again);
2. with probability ``overlap`` (a fixed draw per annotator and pair, so asking again does not
   re-roll it) a pair answered by exactly one other person is offered again; those come first,
   oldest first, so that agreement can be measured while the answers are fresh;
3. then pending questions, oldest first;
4. a pair handed to one annotator is reserved for them for ``lease_s`` seconds, so that two
   people working at once get different pairs (an answer or a new pair ends the lease).

>>> import tempfile, numpy as np
>>> from prefrl.store import LabelStore
>>> from prefrl.types import Clip, ClipPair
>>> def clip(v):
...     return Clip(obs=np.full((3, 2), v, np.float32), acts=np.zeros((3, 1), np.float32),
...                 true_rews=np.full(3, v, np.float32), env_id="demo")
>>> with tempfile.TemporaryDirectory() as d, LabelStore(f"{d}/s.db") as store:
...     q1 = store.add_query(ClipPair(clip(0), clip(1)), "random", 0.0)
...     q2 = store.add_query(ClipPair(clip(2), clip(3)), "random", 0.0)
...     pq = PairQueue(store)
...     (pq.next_for("alice").id, pq.next_for("bob").id, pq.next_for("carol"))
(1, 2, None)
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from prefrl.store import LabelStore, QueryRecord
from prefrl.types import Label


def overlap_draw(annotator: str, pair_key: str) -> float:
    """A fixed uniform number in [0, 1) for (annotator, pair)."""
    digest = hashlib.sha256(f"{annotator}\0{pair_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


@dataclass(frozen=True)
class QueueView:
    """One consistent look at queries and live labels."""

    queries: dict[int, QueryRecord]
    labels: list[Label]

    def humans_by_pair(self) -> dict[str, set[str]]:
        """Pair key -> annotators with a live human label on it."""
        out: dict[str, set[str]] = {}
        for lab in self.labels:
            if lab.source == "human":
                out.setdefault(lab.key, set()).add(lab.annotator)
        return out


class PairQueue:
    """Chooses pairs for annotators (see the module docstring); thread-safe."""

    def __init__(self, store: LabelStore, *, overlap: float = 0.0, lease_s: float = 300.0) -> None:
        if not 0.0 <= overlap <= 1.0:
            raise ValueError(f"overlap must be in [0, 1], got {overlap}")
        self.store, self.overlap, self.lease_s = store, float(overlap), float(lease_s)
        self.lock = threading.RLock()
        self._leases: dict[int, tuple[str, float]] = {}  # query id -> (annotator, expiry)
        self._served: dict[tuple[str, int], float] = {}  # (annotator, query id) -> time

    def view(self) -> QueueView:
        """Read every query and live label (cheap: no clip data)."""
        return QueueView({q.id: q for q in self.store.queries()}, self.store.labels())

    def query(self, query_id: int) -> QueryRecord | None:
        """The query with this id, or None."""
        return self.store.query(query_id)

    def candidates(self, annotator: str, view: QueueView | None = None,
                   exclude: Iterable[int] = ()) -> list[QueryRecord]:
        """Every query ``annotator`` may be shown now, in the order they would be shown."""
        view = view or self.view()
        now, skip = time.time(), set(exclude)
        mine = {lab.key for lab in view.labels if lab.annotator == annotator}
        humans = view.humans_by_pair()

        def free(q: QueryRecord) -> bool:
            lease = self._leases.get(q.id)
            taken = lease is not None and lease[0] != annotator and lease[1] > now
            return q.id not in skip and q.pair_key not in mine and not taken

        again = [q for q in view.queries.values() if q.status != "pending" and free(q)
                 and len(humans.get(q.pair_key, ())) == 1
                 and overlap_draw(annotator, q.pair_key) < self.overlap]
        pending = [q for q in view.queries.values() if q.status == "pending" and free(q)]
        return again + pending

    def pick(self, annotator: str, exclude: Iterable[int] = (), ahead: int = 0
             ) -> list[QueryRecord]:
        """The next pair for ``annotator`` (reserved for them) and the ``ahead`` after it.

        Empty if there is none. The pairs after the first are not reserved: they are what the
        server may prepare videos for in advance.
        """
        with self.lock:  # read the store under the lock: an answer releases its lease only
            view = self.view()  # after its label is committed, so no pair is handed out twice
            found = self.candidates(annotator, view, exclude)
            if found:
                self.reserve(annotator, found[0].id)
            return found[:1 + ahead]

    def next_for(self, annotator: str, exclude: Iterable[int] = ()) -> QueryRecord | None:
        """The next pair for ``annotator`` (reserved for them), or None if there is none."""
        found = self.pick(annotator, exclude)
        return found[0] if found else None

    def reserve(self, annotator: str, query_id: int) -> None:
        """Hold ``query_id`` for ``annotator`` for ``lease_s`` seconds."""
        now = time.time()
        with self.lock:
            self._leases = {k: v for k, v in self._leases.items() if v[1] > now}
            self._leases[query_id] = (annotator, now + self.lease_s)
            if len(self._served) > 10_000:
                self._served = {k: t for k, t in self._served.items() if now - t < 3600}
            self._served[(annotator, query_id)] = now

    def served_at(self, annotator: str, query_id: int) -> float | None:
        """When ``query_id`` was last handed to ``annotator`` (None if never, or forgotten)."""
        return self._served.get((annotator, query_id))

    def release(self, annotator: str, query_id: int) -> None:
        """End ``annotator``'s lease on ``query_id`` (after an answer)."""
        with self.lock:
            if self._leases.get(query_id, ("",))[0] == annotator:
                del self._leases[query_id]

    def n_pending(self, view: QueueView | None = None) -> int:
        """Questions nobody has answered yet."""
        view = view or self.view()
        return sum(q.status == "pending" for q in view.queries.values())
