"""Registry events: instances registered, deregistered, expired, and health changes.

The registry hands events to an :class:`EventPublisher`. Publishing happens on a
background task fed by a bounded queue, so a slow or failing bus never delays a
registration or a health update; the order of events is kept.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from meshkit.tasks import cancel_and_wait
from meshkit.tracing import TraceContext
from registry.model import Health, Instance

log = logging.getLogger(__name__)


class RegistryEventType(enum.Enum):
    """The event types the registry produces, as declared in its contract."""

    REGISTERED = "registry.instance.registered"
    DEREGISTERED = "registry.instance.deregistered"
    HEALTH_CHANGED = "registry.instance.health_changed"
    EXPIRED = "registry.instance.expired"


@dataclass(frozen=True)
class RegistryEvent:
    """Something that happened to an instance."""

    type: RegistryEventType
    instance: Instance
    time: datetime
    previous_health: Health | None = None
    trace: TraceContext | None = None
    """The trace of the call that made the change, if one did."""


class EventPublisher(Protocol):
    """Where registry events go (the JetStream publisher implements this)."""

    async def publish(self, event: RegistryEvent) -> None:
        """Publish one event; may raise, the caller logs and carries on."""
        ...


class LoggingEventPublisher:
    """Writes each event to the log; the default until events go to NATS."""

    async def publish(self, event: RegistryEvent) -> None:
        """Log ``event``."""
        log.info(
            event.type.value,
            extra={
                "event_type": event.type.value,
                "instance_id": event.instance.instance_id,
                "service": event.instance.service,
                "address": event.instance.address,
                "health": event.instance.health.value,
                "previous_health": event.previous_health.value if event.previous_health else None,
            },
        )


class EventDispatcher:
    """Feeds events to a publisher from a background task, in order.

    Args:
        publisher: Where events go.
        capacity: Events waiting beyond this many are dropped with a warning.
    """

    def __init__(self, publisher: EventPublisher, *, capacity: int = 10_000) -> None:
        self._publisher = publisher
        self._queue: asyncio.Queue[RegistryEvent] = asyncio.Queue(maxsize=capacity)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start publishing. Safe to call twice."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="registry-events")

    async def close(self) -> None:
        """Stop publishing; queued events not yet published are dropped. Safe to call twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    def emit(self, event: RegistryEvent) -> None:
        """Queue ``event`` for publishing; never blocks."""
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning(
                "registry event dropped: queue full", extra={"event_type": event.type.value}
            )

    async def _run(self) -> None:
        while True:
            event = await self._queue.get()
            try:
                await self._publisher.publish(event)
            except Exception:
                log.exception(
                    "publishing a registry event failed", extra={"event": event.type.value}
                )
