"""The decision for one call: may this caller call this key once more in this window?

::

    limiter = Limiter(settings, counters)
    key = "/plugmesh.users.v1.UserService/ListUsers"
    verdict = await limiter.check(Subject("machine:mu_1"), key, protocol="http")
    if not verdict.admitted:
        ...  # 429 / RESOURCE_EXHAUSTED / JSON-RPC error; wait verdict.retry_after_seconds

Fixed windows, aligned on the epoch: a limit of ``N/W`` admits the first ``N`` calls of
each caller and key in every window ``[k·W, (k+1)·W)``, counted in the store every replica
shares (:mod:`~gateway.ratelimit.store`), so ``N`` holds across replicas exactly. (A
caller may make ``N`` calls at the end of one window and ``N`` at the start of the next:
the price of a count that is one number per window, not one per call.) Replicas agree on
the windows as far as their clocks agree.

A refusal is remembered until its window ends: a count only grows within a window, so
the caller's next calls are refused without asking the store again. The first refusal of
a caller, key and window is told to ``on_exceeded`` (:class:`Exceeded`): once per window
on each replica, however many calls are refused.

The limits fail open: when the store cannot count a call (NATS away or slower than the
timeout), the call goes through, is counted in ``plugmesh_gateway_rate_limit_unchecked_total``
and logged (at most once a minute). A limit protects plugins from one caller; an outage
of NATS should not refuse every caller of every plugin.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter

from gateway.ratelimit.settings import AdminPolicy, Limit, RateLimitSettings
from gateway.ratelimit.store import CounterStore, StoreUnavailable

__all__ = ["Exceeded", "Limiter", "Subject", "Verdict"]

log = logging.getLogger(__name__)

#: Refused windows remembered at once before the ended ones are dropped.
_REMEMBERED = 4096
_WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Subject:
    """Who is counted.

    Attributes:
        id: ``<kind>:<id>`` (``user:…``, ``machine:…``), or ``address:<ip>`` for an
            anonymous caller of a public RPC.
        admin: Whether the caller is an admin.
    """

    id: str
    admin: bool = False


@dataclass(frozen=True)
class Verdict:
    """The decision.

    Attributes:
        admitted: Whether the call may go on.
        limit: The limit that applied; None when none did.
        retry_after_seconds: When refused, whole seconds until the window ends.
    """

    admitted: bool
    limit: Limit | None = None
    retry_after_seconds: int = 0


_ADMITTED = Verdict(admitted=True)


@dataclass(frozen=True)
class Exceeded:
    """A caller went over a limit: the first refusal of its window.

    Attributes:
        subject: Who.
        key: What was limited.
        limit: The limit.
        window_end_seconds: When the window ends, in seconds since the epoch.
        protocol: The door of the refused call.
        counter: The count's name, the same on every replica for this caller, key and
            window.
    """

    subject: Subject
    key: str
    limit: Limit
    window_end_seconds: float
    protocol: str
    counter: str


class Limiter:
    """Counts calls per caller and key, and refuses those over the limit.

    Args:
        settings: The limits.
        counters: The shared counts.
        metrics_registry: Where the refusals and the uncounted calls are counted.
        clock: Seconds since the epoch (tests pass their own).
        on_exceeded: Told of the first refusal of each caller, key and window; must not
            block.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        counters: CounterStore,
        *,
        metrics_registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.time,
        on_exceeded: Callable[[Exceeded], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_exceeded = on_exceeded
        self._counters = counters
        self._clock = clock
        self._refused: dict[str, float] = {}
        self._warned_at = -math.inf
        self._refusals = Counter(
            "plugmesh_gateway_rate_limited_total",
            "Calls the gateway refused because their caller was over a rate limit.",
            ["protocol"],
            registry=metrics_registry,
        )
        self._unchecked = Counter(
            "plugmesh_gateway_rate_limit_unchecked_total",
            "Calls let through uncounted because the rate limits' store could not count them.",
            registry=metrics_registry,
        )

    @property
    def settings(self) -> RateLimitSettings:
        """The limits."""
        return self._settings

    async def check(self, subject: Subject, key: str, *, protocol: str) -> Verdict:
        """Count a call of ``key`` by ``subject``, and decide it.

        Args:
            subject: Who calls.
            key: ``/<package.Service>/<Method>`` or ``<server>/<tool>``.
            protocol: ``http``, ``grpc`` or ``mcp``, for the refusals' metric.
        """
        limit = self._settings.limit_for(subject.id, key)
        if limit is None or (subject.admin and self._settings.admins is AdminPolicy.EXEMPT):
            return _ADMITTED
        now = self._clock()
        window = math.floor(now / limit.window_seconds)
        ends = (window + 1) * limit.window_seconds
        counter = f"{_digest(subject.id, key, limit)}.{window}"
        if counter in self._refused:
            return self._refuse(limit, ends - now, protocol)
        try:
            total = await self._counters.increment(
                counter, timeout_seconds=self._settings.timeout_seconds
            )
        except StoreUnavailable as exc:
            self._unchecked.inc()
            if now - self._warned_at >= _WARN_EVERY_SECONDS:
                self._warned_at = now
                log.warning("calls go through uncounted (rate limits fail open): %s", exc)
            return Verdict(admitted=True, limit=limit)
        if total <= limit.count:
            return Verdict(admitted=True, limit=limit)
        self._remember(counter, ends)
        if self._on_exceeded is not None:
            self._on_exceeded(Exceeded(subject, key, limit, ends, protocol, counter))
        return self._refuse(limit, ends - self._clock(), protocol)

    def _refuse(self, limit: Limit, seconds_left: float, protocol: str) -> Verdict:
        self._refusals.labels(protocol).inc()
        return Verdict(
            admitted=False, limit=limit, retry_after_seconds=max(1, math.ceil(seconds_left))
        )

    def _remember(self, counter: str, ends: float) -> None:
        if len(self._refused) >= _REMEMBERED:
            now = self._clock()
            self._refused = {name: end for name, end in self._refused.items() if end > now}
        self._refused[counter] = ends


def _digest(caller: str, key: str, limit: Limit) -> str:
    """A subject token for (caller, key, window length): any caller id and key, even with
    dots or spaces, and two limits of different windows never share a count."""
    named = f"{caller}\0{key}\0{limit.window_seconds:g}".encode()
    return hashlib.sha256(named).hexdigest()[:32]
