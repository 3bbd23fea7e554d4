"""Registry events on the event bus, written in the registry's own transactions.

A registration, a deregistration and an expiry write their event into the outbox of the
registry's database in the transaction that changes the stored state, so the event exists
exactly when the change does; a health change, which lives in memory only, writes its
event in a transaction of its own. The store makes those transactions on its worker
thread (:class:`~registry.store.RegistryStore`), in the order the changes happened; the
event bus's relay publishes the rows to JetStream afterwards, retrying while NATS is away.

::

    bus = EventBus("registry", database=Database(url), nats_url=nats_url)
    store = RegistryStore(url, outbox=RegistryOutbox(bus))
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from google.protobuf import message
from sqlalchemy.orm import Session

from meshkit.events import EventBus, Outbox
from meshkit.events.outbox import OutboxRow
from plugmesh.events.v1 import event_pb2, registry_events_pb2
from registry.events import RegistryEvent, RegistryEventType
from registry.model import Health
from registry.service import health_message, instance_message

__all__ = ["RegistryOutbox", "payload_of"]

_REGISTRY = event_pb2.Actor(type=event_pb2.ACTOR_TYPE_SYSTEM, id="registry")


class RegistryOutbox:
    """Adds registry events to the outbox of an :class:`EventBus` on the registry's database.

    Args:
        bus: The registry's event bus; its relay sends the rows.

    Rows are added in sessions of the store's worker thread; after their commit they are
    handed to the relay on the event loop that made this object (the relay is not
    thread-safe). Rows a crash keeps from the relay, it finds by polling the table.
    """

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._outbox = Outbox(bus.outbox.source)
        self._loop = asyncio.get_running_loop()
        self._outbox.on_commit(self._committed)

    def add(self, session: Session, events: Sequence[RegistryEvent]) -> None:
        """Add ``events`` to the transaction of ``session`` (a synchronous session)."""
        # The bus's recorder, once the registry's server gave it one (traces on).
        self._outbox.spans = self._bus.outbox.spans
        for event in events:
            self._outbox.add(
                session,
                payload_of(event),
                subject=f"instances/{event.instance.instance_id}",
                time=event.time,
                trace=event.trace,  # this thread has no current trace of its own
            )

    def _committed(self, rows: Sequence[OutboxRow]) -> None:
        # Called on the store's thread, inside commit().
        self._loop.call_soon_threadsafe(self._hand_over, list(rows))

    def _hand_over(self, rows: list[OutboxRow]) -> None:
        relay = self._bus.relay
        if relay is not None:
            relay.committed(rows)


def payload_of(event: RegistryEvent) -> message.Message:
    """The ``plugmesh.events.v1`` payload of a registry event."""
    instance = instance_message(event.instance)
    service = event_pb2.Actor(type=event_pb2.ACTOR_TYPE_SERVICE, id=event.instance.service)
    match event.type:
        case RegistryEventType.REGISTERED:
            return registry_events_pb2.RegistryInstanceRegistered(actor=service, instance=instance)
        case RegistryEventType.DEREGISTERED:
            return registry_events_pb2.RegistryInstanceDeregistered(
                actor=service, instance=instance
            )
        case RegistryEventType.HEALTH_CHANGED:
            return registry_events_pb2.RegistryInstanceHealthChanged(
                actor=_REGISTRY,
                instance=instance,
                previous_health=health_message(event.previous_health or Health.UNKNOWN),
            )
        case RegistryEventType.EXPIRED:
            return registry_events_pb2.RegistryInstanceExpired(actor=_REGISTRY, instance=instance)
