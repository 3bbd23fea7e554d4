"""Typed events over NATS JetStream, with nothing lost.

A plugin publishes through a transactional outbox in its own database and subscribes
with durable consumers that are idempotent on the event id::

    from meshkit.db import Database
    from meshkit.events import EventBus, EventSettings, ReceivedEvent

    db = Database(config.database_url_for("audit"))
    bus = EventBus("audit", database=db, nats_url=config.nats_url,
                   settings=EventSettings.from_env())

    async def record(event: ReceivedEvent, session: AsyncSession) -> None:
        session.add(Entry(event_id=event.id, type=event.type, ...))

    bus.subscribe(">", record)
    bus.attach(server)

    async with db.transaction() as session:
        bus.publish(session, UserCreated(...), subject="users/u-1")

Modules: :mod:`~meshkit.events.envelope` (the CloudEvents envelope),
:mod:`~meshkit.events.outbox` and :mod:`~meshkit.events.relay` (publishing),
:mod:`~meshkit.events.subscriber` (consuming), :mod:`~meshkit.events.streams`,
:mod:`~meshkit.events.deadletters`, :mod:`~meshkit.events.settings`,
:mod:`~meshkit.events.tracecontext`, :mod:`~meshkit.events.tables`,
:mod:`~meshkit.events.bus` (this façade), :mod:`~meshkit.events.errors`.
"""

from __future__ import annotations

from meshkit.events.bus import EventBus, EventBusStatus
from meshkit.events.envelope import (
    PAYLOAD_TYPES,
    ReceivedEvent,
    build_event,
    event_type_of,
    parse_event,
    source_of,
    subject_of,
    unpack_payload,
)
from meshkit.events.errors import (
    DeadLetterNotFound,
    EnvelopeError,
    EventBusStateError,
    EventError,
    NotAnEventPayload,
    StreamError,
    UnknownEventType,
)
from meshkit.events.outbox import Outbox
from meshkit.events.settings import EventSettings
from meshkit.events.subscriber import EventHandler, Subscription
from meshkit.events.tracecontext import TraceContext, current_trace, use_trace

__all__ = [
    "PAYLOAD_TYPES",
    "DeadLetterNotFound",
    "EnvelopeError",
    "EventBus",
    "EventBusStateError",
    "EventBusStatus",
    "EventError",
    "EventHandler",
    "EventSettings",
    "NotAnEventPayload",
    "Outbox",
    "ReceivedEvent",
    "StreamError",
    "Subscription",
    "TraceContext",
    "UnknownEventType",
    "build_event",
    "current_trace",
    "event_type_of",
    "parse_event",
    "source_of",
    "subject_of",
    "unpack_payload",
    "use_trace",
]
