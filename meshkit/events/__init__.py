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
:mod:`~meshkit.events.subscriber` (consuming), :mod:`~meshkit.events.connection`
(connecting to NATS, once or in the background), :mod:`~meshkit.events.streams`,
:mod:`~meshkit.events.deadletters`, :mod:`~meshkit.events.settings`,
:mod:`~meshkit.events.tables`, :mod:`~meshkit.events.bus` (this façade),
:mod:`~meshkit.events.errors`. The trace an event carries is :mod:`meshkit.tracing`'s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshkit.events._ids import uuid7_of
    from meshkit.events.bus import EventBus, EventBusStatus
    from meshkit.events.connection import close_quietly, connect_nats, keep_connecting
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

# Names are imported on first use (PEP 562), so that a light import of one module of the
# package, such as meshkit.events.settings by a table of variables, does not load NATS,
# SQLAlchemy and protobuf.
_WHERE = {
    "EventBus": "bus",
    "EventBusStatus": "bus",
    "close_quietly": "connection",
    "connect_nats": "connection",
    "keep_connecting": "connection",
    "PAYLOAD_TYPES": "envelope",
    "ReceivedEvent": "envelope",
    "build_event": "envelope",
    "event_type_of": "envelope",
    "parse_event": "envelope",
    "source_of": "envelope",
    "subject_of": "envelope",
    "unpack_payload": "envelope",
    "DeadLetterNotFound": "errors",
    "EnvelopeError": "errors",
    "EventBusStateError": "errors",
    "EventError": "errors",
    "NotAnEventPayload": "errors",
    "StreamError": "errors",
    "UnknownEventType": "errors",
    "Outbox": "outbox",
    "EventSettings": "settings",
    "EventHandler": "subscriber",
    "Subscription": "subscriber",
    "uuid7_of": "_ids",
}

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
    "UnknownEventType",
    "build_event",
    "close_quietly",
    "connect_nats",
    "event_type_of",
    "keep_connecting",
    "parse_event",
    "source_of",
    "subject_of",
    "unpack_payload",
    "uuid7_of",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
