"""The counts every gateway replica shares: a JetStream counter stream.

::

    counters = JetStreamCounters(nats_url, keep_seconds=60, replicas=1)
    await counters.start()                  # connects in the background
    total = await counters.increment("ab12….28934", timeout_seconds=0.5)
    await counters.close()

Why a counter stream (ADR-49, nats-server 2.12 and later) and not a key-value bucket
updated by compare-and-set: an increment is one publish whose acknowledgement carries
the new total, atomic on the server, so a call costs one round trip however many
replicas count the same key at once. With compare-and-set, every replica that loses a
race reads and writes again, and under load the round trips grow with the number of
contenders. The stream keeps one message per subject (its total) in memory, and drops
it ``keep_seconds`` after its last increment (the stream's ``max_age``): a count
outlives its window, then disappears, so the store does not grow. A NATS restart loses
the counts of the windows then open (a memory stream does not outlive its server); the
limits start those windows again. A stream that is gone (NATS restarted, or someone
deleted it) is made again at the first increment that finds no stream, at most once every
few seconds; the calls in between go uncounted, as when NATS is away.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Protocol

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.js import api

from meshkit.events.connection import close_quietly, keep_connecting
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls

__all__ = ["STREAM", "SUBJECT_PREFIX", "CounterStore", "JetStreamCounters", "StoreUnavailable"]

log = logging.getLogger(__name__)

#: The stream of the counts, and the subjects it holds.
STREAM = "PLUGMESH_RATE_LIMITS"
SUBJECT_PREFIX = "plugmesh.ratelimit."
_INCREMENT = {"Nats-Incr": "1"}
#: How long to wait before trying NATS again when it cannot be reached at start.
_RETRY_SECONDS = 1.0
#: Least time between two attempts to make a stream that went missing.
_REMAKE_SECONDS = 2.0


class StoreUnavailable(Exception):
    """The count could not be had: NATS is away, slow, or refused the increment."""


class CounterStore(Protocol):
    """Counts shared by every replica."""

    async def increment(self, counter: str, *, timeout_seconds: float) -> int:
        """Add one to ``counter`` (a subject token) and return its new total.

        Raises:
            StoreUnavailable: The total could not be had in time.
        """
        ...


class JetStreamCounters:
    """Counters in the JetStream counter stream :data:`STREAM`.

    Args:
        nats_url: Where NATS runs.
        keep_seconds: How long a counter is kept after its last increment.
        replicas: The stream's replicas in a NATS cluster.
        tls: The certificate of the NATS connection over TLS; plaintext when None.
    """

    def __init__(
        self,
        nats_url: str,
        *,
        keep_seconds: float,
        replicas: int = 1,
        tls: MeshTls | None = None,
    ) -> None:
        self._url = nats_url
        self._tls = tls
        self._keep_seconds = max(keep_seconds, 1.0)
        self._replicas = replicas
        self._nc: Client | None = None
        self._ready = False
        self._task: asyncio.Task[None] | None = None
        self._remaking: asyncio.Task[None] | None = None
        self._remade_at = -math.inf

    @property
    def ready(self) -> bool:
        """Whether increments can be made now (connected, the stream in place)."""
        return self._ready and self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        """Connect and set the stream up in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._connect(), name="gateway-rate-limits")

    async def close(self) -> None:
        """Stop. Safe to call twice."""
        await cancel_and_wait(self._task, self._remaking)
        self._ready = False
        nc, self._nc = self._nc, None
        if nc is not None:
            await close_quietly(nc)

    async def increment(self, counter: str, *, timeout_seconds: float) -> int:
        """Add one to ``counter`` and return its new total.

        Raises:
            StoreUnavailable: Not connected yet, NATS did not answer in time, or the
                stream refused the increment.
        """
        nc = self._nc
        if nc is None or not self.ready:
            raise StoreUnavailable("the rate limits' NATS stream is not reachable yet")
        try:
            ack = await nc.jetstream().publish(
                SUBJECT_PREFIX + counter, b"", timeout=timeout_seconds, headers=dict(_INCREMENT)
            )
        except (nats.js.errors.NoStreamResponseError, nats.errors.NoRespondersError):
            self._remake_stream(nc)
            raise StoreUnavailable(f"stream {STREAM} is gone; it is being made again") from None
        except (nats.errors.Error, TimeoutError) as exc:
            raise StoreUnavailable(f"the count of a call could not be had: {exc}") from exc
        if ack.val is None:
            raise StoreUnavailable(f"stream {STREAM} is not a counter stream")
        return int(ack.val)

    async def _connect(self) -> None:
        self._nc = await keep_connecting(
            self._url,
            name="plugmesh-gateway-rate-limits",
            tls=self._tls,
            ready=self._ensure_stream,
            unavailable_warning="rate limits cannot reach NATS yet; calls go uncounted",
            retry_seconds=_RETRY_SECONDS,
        )
        self._ready = True
        log.info("rate limits counted in NATS", extra={"stream": STREAM})

    def _remake_stream(self, nc: Client) -> None:
        """Make the stream again in the background, unless that was tried just now."""
        now = time.monotonic()
        if (self._remaking is not None and not self._remaking.done()) or (
            now - self._remade_at < _REMAKE_SECONDS
        ):
            return
        self._remade_at = now
        self._remaking = asyncio.create_task(self._remake(nc), name="gateway-rate-limits-remake")

    async def _remake(self, nc: Client) -> None:
        try:
            await self._ensure_stream(nc)
        except (nats.errors.Error, nats.js.errors.Error, TimeoutError) as exc:
            log.warning("the rate limits' stream could not be made again: %s", exc)
            return
        log.info("the rate limits' stream was made again", extra={"stream": STREAM})

    async def _ensure_stream(self, nc: Client) -> None:
        """Create the stream, or widen its ``max_age`` when this replica keeps counts
        longer than the replica that made it (a longer window)."""
        js = nc.jetstream()
        config = api.StreamConfig(
            name=STREAM,
            description="plugmesh gateway: calls per caller, key and window",
            subjects=[SUBJECT_PREFIX + ">"],
            allow_msg_counter=True,
            max_msgs_per_subject=1,
            max_age=self._keep_seconds,
            storage=api.StorageType.MEMORY,
            num_replicas=self._replicas,
        )
        try:
            info = await js.stream_info(STREAM)
        except nats.js.errors.NotFoundError:
            await js.add_stream(config)
            return
        if (info.config.max_age or 0) < self._keep_seconds:
            await js.update_stream(config)
