"""The teacher interface: something that answers "which clip is better?".

>>> from prefrl.types import Answer
>>> class AlwaysLeft(Oracle):
...     name = "always-left"
...     def answer(self, pair):
...         return Answer.LEFT
>>> AlwaysLeft().answer_many([None, None])
[<Answer.LEFT: 'left'>, <Answer.LEFT: 'left'>]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

from prefrl.types import Answer, ClipPair


class Oracle(ABC):
    """A teacher answering preference queries about clip pairs."""

    name: str = "oracle"

    @abstractmethod
    def answer(self, pair: ClipPair) -> Answer:
        """Answer one query: left or right clip better, equal, or skip."""

    def answer_many(self, pairs: Iterable[ClipPair]) -> list[Answer]:
        """Answer several queries in order (default: one :meth:`answer` call each)."""
        return [self.answer(p) for p in pairs]
