"""Which instance a call goes to: the next serving one, round-robin, and once more another
one when a safe call found its instance UNAVAILABLE.

The gateway (:mod:`gateway.upstream`) and discovery (:mod:`meshkit.discovery`) pick so::

    picker = Picker(serving)            # serving(key): the serving instances of a service
    instance = picker.pick("users")     # None when none serves
    deadline = Deadline(timeout_seconds)
    ...                                 # the call fails with UNAVAILABLE
    again = picker.retry("users", instance, error, deadline, method=path)

Only the caller knows whether a method is safe to repeat (``idempotency_level``
NO_SIDE_EFFECTS or IDEMPOTENT): it asks :meth:`Picker.retry` for those only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from typing import Generic, Protocol, TypeVar

import grpc

__all__ = ["Addressed", "Deadline", "Picker"]

log = logging.getLogger(__name__)


class Addressed(Protocol):
    """An instance, known by the address it serves at."""

    @property
    def address(self) -> str:
        """``host:port``."""
        ...


_Instance = TypeVar("_Instance", bound=Addressed)


class Deadline:
    """When a call must be over, counted from now; ``None`` for never."""

    def __init__(self, timeout_seconds: float | None) -> None:
        self._at = None if timeout_seconds is None else time.monotonic() + timeout_seconds

    def remaining(self) -> float | None:
        """Seconds left (0 once passed), or ``None`` without a deadline."""
        return None if self._at is None else max(self._at - time.monotonic(), 0.0)

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._at is not None and time.monotonic() >= self._at


class Picker(Generic[_Instance]):
    """Round-robin over the serving instances of each service, by a key of the caller's
    choosing (a mesh service name, a gRPC service name).

    Args:
        serving: The serving instances of a service, by key, in a stable order.
    """

    def __init__(self, serving: Callable[[str], Sequence[_Instance]]) -> None:
        self._serving = serving
        self._turns: dict[str, int] = {}

    def pick(self, key: str, *, exclude: str = "") -> _Instance | None:
        """The next serving instance of ``key`` other than the one at ``exclude``, or
        ``None`` when there is none."""
        candidates = [i for i in self._serving(key) if i.address != exclude]
        if not candidates:
            return None
        turn = self._turns.get(key, 0)
        # A retry (``exclude``) does not take a turn: the next call still goes to the
        # instance after the failed one, so a broken instance is not every call's first.
        if not exclude:
            self._turns[key] = turn + 1
        return candidates[turn % len(candidates)]

    def retry(
        self,
        key: str,
        failed: Addressed,
        error: grpc.aio.AioRpcError,
        deadline: Deadline,
        *,
        method: str,
    ) -> _Instance | None:
        """Another instance to make a safe call ``method`` again on, after it failed on
        ``failed``; ``None`` when the failure stands: it was not UNAVAILABLE, no time is
        left, or no other instance serves. A call is retried once: do not ask again."""
        if error.code() != grpc.StatusCode.UNAVAILABLE or deadline.expired():
            return None
        target = self.pick(key, exclude=failed.address)
        if target is not None:
            log.info(
                "retrying a safe call on another instance",
                extra={"method": method, "failed": failed.address, "retry": target.address},
            )
        return target

    def keep(self, keys: Collection[str]) -> None:
        """Forget the turns of every key not in ``keys`` (services that left)."""
        for key in set(self._turns) - set(keys):
            del self._turns[key]
