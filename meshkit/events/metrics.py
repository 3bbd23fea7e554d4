"""Prometheus metrics of an event bus: what it published and consumed, and what waits.

| name | labels | meaning |
|---|---|---|
| ``plugmesh_events_published_total`` | type | events JetStream acknowledged from the outbox |
| ``plugmesh_events_publish_failures_total`` | type | attempts to publish that failed |
| ``plugmesh_events_consumed_total`` | consumer, type | events handled and acknowledged |
| ``plugmesh_events_redelivered_total`` | consumer, type | deliveries after the first |
| ``plugmesh_events_dead_lettered_total`` | consumer, type | events given up on |
| ``plugmesh_events_outbox_pending`` | | outbox rows not yet marked sent (sampled) |
| ``plugmesh_events_consumer_pending`` | consumer | events the consumer has not been sent yet
  (its lag: JetStream's ``num_pending``, sampled) |
| ``plugmesh_events_consumer_ack_pending`` | consumer | events sent and not yet acknowledged
  (sampled) |

The gauges are sampled every ``PLUGMESH_EVENTS_METRICS_INTERVAL_MILLIS`` by
:class:`Sampler`, a task of the bus; the counters move as things happen.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Generic, TypeVar

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import APIError
from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select

from meshkit.db import Database
from meshkit.events.streams import EVENTS_STREAM
from meshkit.events.tables import OutboxRecord
from meshkit.tasks import cancel_and_wait

__all__ = ["EventMetrics", "Sampler"]

log = logging.getLogger(__name__)

_C = TypeVar("_C", Counter, Gauge)


class _Labelled(Generic[_C]):
    """Children of a metric by label values, looked up once each (``labels()`` locks)."""

    def __init__(self, metric: _C) -> None:
        self._metric: _C = metric
        self._children: dict[tuple[str, ...], _C] = {}

    def __call__(self, *values: str) -> _C:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


class EventMetrics:
    """The event bus's metrics, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

        def counter(name: str, doc: str, labels: Sequence[str]) -> _Labelled[Counter]:
            return _Labelled(Counter(name, doc, labels, registry=registry))

        self.published = counter(
            "plugmesh_events_published", "Events JetStream acknowledged from the outbox.", ["type"]
        )
        self.publish_failures = counter(
            "plugmesh_events_publish_failures",
            "Attempts to publish an outbox row that failed (the row stays pending).",
            ["type"],
        )
        self.consumed = counter(
            "plugmesh_events_consumed",
            "Events a consumer handled (or had handled before) and acknowledged.",
            ["consumer", "type"],
        )
        self.redelivered = counter(
            "plugmesh_events_redelivered",
            "Deliveries of an event to a consumer after the first.",
            ["consumer", "type"],
        )
        self.dead_lettered = counter(
            "plugmesh_events_dead_lettered",
            "Events a consumer gave up on and sent to the dead-letter stream.",
            ["consumer", "type"],
        )
        self.outbox_pending = Gauge(
            "plugmesh_events_outbox_pending",
            "Outbox rows not yet marked sent (sampled).",
            registry=registry,
        )
        self.consumer_pending = _Labelled(
            Gauge(
                "plugmesh_events_consumer_pending",
                "Events in the stream the consumer has not been sent yet: its lag (sampled).",
                ["consumer"],
                registry=registry,
            )
        )
        self.consumer_ack_pending = _Labelled(
            Gauge(
                "plugmesh_events_consumer_ack_pending",
                "Events sent to the consumer and not yet acknowledged (sampled).",
                ["consumer"],
                registry=registry,
            )
        )


_OUTBOX_PENDING = (
    select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
)


class Sampler:
    """Samples the outbox depth and the consumers' lag into the gauges, every interval.

    Args:
        metrics: Where the samples go.
        database: The database holding the outbox.
        js: JetStream, for the consumers' state.
        consumers: The names of the consumers to sample.
        interval_seconds: Time between samples.
    """

    def __init__(
        self,
        metrics: EventMetrics,
        database: Database,
        js: JetStreamContext,
        consumers: Sequence[str],
        *,
        interval_seconds: float,
    ) -> None:
        self._metrics = metrics
        self._db = database
        self._js = js
        self._consumers = tuple(consumers)
        self._interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        """Sample in a background task. Safe to call twice."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="plugmesh-event-metrics")

    async def close(self) -> None:
        """Stop sampling. Safe to call twice."""
        # The flag too: Python 3.11's wait_for (inside nats-py's requests) can swallow a
        # cancellation that races with its answer, and the loop must end all the same.
        self._stopping.set()
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def sample(self) -> None:
        """Take one sample now; what cannot be read keeps its last value."""
        try:
            async with self._db.read() as session:
                pending = await session.scalar(_OUTBOX_PENDING)
            self._metrics.outbox_pending.set(pending or 0)
        except Exception as exc:
            log.debug("sampling the outbox depth failed: %s", exc)
        for consumer in self._consumers:
            try:
                info = await self._js.consumer_info(EVENTS_STREAM, consumer)
            except (nats.errors.Error, APIError, TimeoutError) as exc:
                log.debug("sampling consumer %s failed: %s", consumer, exc)
                continue
            self._metrics.consumer_pending(consumer).set(info.num_pending or 0)
            self._metrics.consumer_ack_pending(consumer).set(info.num_ack_pending or 0)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            await self.sample()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stopping.wait()
