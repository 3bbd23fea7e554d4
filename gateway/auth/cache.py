"""A short-lived cache of answers the gateway got from other services, bounded and
invalidated by events.

Keys are SHA-256 digests (of a token, or of a user id), never a credential itself. An
entry lives until its own deadline (the cache's TTL, or earlier when the answer says it
stops being true sooner) and is dropped at once by :meth:`AnswerCache.drop_owner` (a
machine user deleted or its token rotated; a user changed) or :meth:`AnswerCache.clear`.

A lookup that was in flight while an invalidation happened must not store its answer,
which may already be stale: callers take :attr:`AnswerCache.epoch` before asking and
pass it to :meth:`AnswerCache.put`, which ignores answers from an older epoch.

While :attr:`AnswerCache.enabled` is False (the invalidation events are not being
received) nothing is stored, so no answer outlives a change the gateway cannot hear of.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["AnswerCache", "digest"]

_V = TypeVar("_V")


def digest(value: str) -> bytes:
    """The key of ``value``: its SHA-256."""
    return hashlib.sha256(value.encode()).digest()


@dataclass(frozen=True)
class _Entry(Generic[_V]):
    value: _V
    owner: str
    deadline: float


class AnswerCache(Generic[_V]):
    """Answers by key, each with the owner (machine user id, user id) it is about.

    Args:
        ttl_seconds: Longest life of an entry; 0 stores nothing.
        max_entries: The least recently used entries go beyond this.
        clock: Monotonic seconds.
    """

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, _Entry[_V]] = OrderedDict()
        self._owners: dict[str, set[bytes]] = {}
        self._epoch = 0
        self.enabled = False

    @property
    def epoch(self) -> int:
        """Moves on every invalidation; see :meth:`put`."""
        return self._epoch

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> _V | None:
        """The live answer under ``key``, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.deadline <= self._clock():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.value

    def put(
        self,
        key: bytes,
        value: _V,
        *,
        owner: str,
        epoch: int,
        max_seconds: float | None = None,
    ) -> None:
        """Store ``value`` unless the cache is off or invalidated since ``epoch``.

        Args:
            key: Its key (:func:`digest`).
            value: The answer.
            owner: Whom it is about, for :meth:`drop_owner`.
            epoch: :attr:`epoch` taken before the answer was asked for.
            max_seconds: How long the answer stays true at most, when it says so.
        """
        if not self.enabled or epoch != self._epoch or self._ttl <= 0:
            return
        life = self._ttl if max_seconds is None else min(self._ttl, max_seconds)
        if life <= 0:
            return
        self._remove(key)
        self._entries[key] = _Entry(value, owner, self._clock() + life)
        self._owners.setdefault(owner, set()).add(key)
        while len(self._entries) > self._max:
            oldest = next(iter(self._entries))
            self._remove(oldest)

    def drop_owner(self, owner: str) -> None:
        """Forget every answer about ``owner``."""
        self._epoch += 1
        for key in self._owners.pop(owner, set()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._epoch += 1
        self._entries.clear()
        self._owners.clear()

    def _remove(self, key: bytes) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        keys = self._owners.get(entry.owner)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._owners[entry.owner]
