"""The envelope: building, reading and unpacking ``plugmesh.events.v1.Event``.

An event's type comes from its payload message's ``(plugmesh.options.v1.event)`` option,
so a payload cannot be sent under the wrong type::

    event = build_event(UserCreated(...), source=source_of("users"), subject="users/u-1")
    subject_of(event.type)            # "plugmesh.events.user.created"
    unpack_payload(parse_event(data)) # UserCreated(...)
"""

from __future__ import annotations

import datetime as dt
import functools
import time as _time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from google.protobuf import descriptor, descriptor_pool, message, message_factory
from google.protobuf.message import DecodeError

from meshkit.events._ids import new_event_id
from meshkit.events.errors import EnvelopeError, NotAnEventPayload, UnknownEventType
from meshkit.tracing import TraceContext
from plugmesh.events.v1 import (
    auth_events_pb2,
    event_pb2,
    machine_user_events_pb2,
    rate_limit_events_pb2,
    registry_events_pb2,
    tool_events_pb2,
    user_events_pb2,
)
from plugmesh.options.v1 import options_pb2

if TYPE_CHECKING:
    from google._upb import _message  # the C implementation's Descriptor, in the stubs

__all__ = [
    "CONTENT_TYPE",
    "PAYLOAD_TYPES",
    "SPECVERSION",
    "SUBJECT_PREFIX",
    "ReceivedEvent",
    "build_event",
    "event_type_of",
    "parse_event",
    "source_of",
    "subject_of",
    "type_of_subject",
    "unpack_payload",
]

SPECVERSION = "1.0"
CONTENT_TYPE = "application/protobuf"
SUBJECT_PREFIX = "plugmesh.events."

_MODULES = (
    auth_events_pb2,
    machine_user_events_pb2,
    rate_limit_events_pb2,
    registry_events_pb2,
    tool_events_pb2,
    user_events_pb2,
)


def _event_type(desc: descriptor.Descriptor | _message.Descriptor) -> str | None:
    options = desc.GetOptions()
    if not options.HasExtension(options_pb2.event):
        return None
    return options.Extensions[options_pb2.event].type or None


def _payload_types() -> Mapping[str, type[message.Message]]:
    found: dict[str, type[message.Message]] = {}
    for module in _MODULES:
        for desc in module.DESCRIPTOR.message_types_by_name.values():
            event_type = _event_type(desc)
            if event_type is not None:
                found[event_type] = message_factory.GetMessageClass(desc)
    return MappingProxyType(found)


#: Every event type of ``plugmesh.events.v1`` and its payload message class.
PAYLOAD_TYPES: Mapping[str, type[message.Message]] = _payload_types()

# Reading a message's options costs more than the rest of building an envelope.
_TYPE_OF_MESSAGE = {cls.DESCRIPTOR.full_name: name for name, cls in PAYLOAD_TYPES.items()}


def event_type_of(payload: message.Message | type[message.Message]) -> str:
    """The event type a payload message carries, for example ``"user.created"``.

    Raises:
        NotAnEventPayload: The message has no ``(plugmesh.options.v1.event)`` option.
    """
    desc = payload.DESCRIPTOR
    event_type = _TYPE_OF_MESSAGE.get(desc.full_name) or _event_type(desc)
    if event_type is None:
        raise NotAnEventPayload(desc.full_name)
    return event_type


def subject_of(event_type: str) -> str:
    """The NATS subject of an event type: ``plugmesh.events.<type>``."""
    return SUBJECT_PREFIX + event_type


def type_of_subject(subject: str) -> str:
    """The event type of a subject: the inverse of :func:`subject_of`."""
    return subject.removeprefix(SUBJECT_PREFIX)


def source_of(service: str) -> str:
    """The CloudEvents source of a process: ``/plugmesh/<service>``."""
    return f"/plugmesh/{service}"


def build_event(
    payload: message.Message,
    *,
    source: str,
    subject: str = "",
    time: dt.datetime | None = None,
    event_id: str | None = None,
) -> event_pb2.Event:
    """Wrap ``payload`` in an envelope with a new time-ordered id.

    Args:
        payload: A message marked with ``(plugmesh.options.v1.event)``.
        source: The producer, ``/plugmesh/<service>`` (:func:`source_of`).
        subject: The resource the event is about, for example ``users/u-1``.
        time: When the change happened; now by default.
        event_id: The id; a new UUIDv7 by default.

    Raises:
        NotAnEventPayload: ``payload`` is not an event payload.
    """
    event = event_pb2.Event(
        id=event_id or new_event_id(),
        source=source,
        specversion=SPECVERSION,
        type=event_type_of(payload),
        subject=subject,
        datacontenttype=CONTENT_TYPE,
    )
    if time is None:
        # What Timestamp.GetCurrentTime does, without its detour through datetime: whole
        # microseconds, as every store keeps times, so a consumer's copy equals the event's.
        micros = _time.time_ns() // 1_000
        event.time.seconds, micros = divmod(micros, 1_000_000)
        event.time.nanos = micros * 1_000
    else:
        event.time.FromDatetime(time.astimezone(dt.UTC))
    event.data.Pack(payload)
    return event


def parse_event(data: bytes) -> event_pb2.Event:
    """Read an envelope from its binary form and check its required attributes.

    Raises:
        EnvelopeError: The bytes are not an envelope, or ``id``, ``type`` or ``source``
            is empty.
    """
    event = event_pb2.Event()
    try:
        event.ParseFromString(data)
    except DecodeError as exc:
        raise EnvelopeError(f"not a plugmesh.events.v1.Event ({len(data)} bytes): {exc}") from exc
    missing = [name for name in ("id", "type", "source") if not getattr(event, name)]
    if missing:
        raise EnvelopeError(f"event envelope without {', '.join(missing)}")
    return event


def unpack_payload(event: event_pb2.Event) -> message.Message:
    """The payload of ``event``, as an instance of its generated class.

    Raises:
        UnknownEventType: No generated code for the payload type is loaded.
        EnvelopeError: The payload does not decode, or carries another event type.
    """
    name = event.data.TypeName()
    cls = _class_named(name)
    if cls is None:
        raise UnknownEventType(event.data.type_url)
    payload = cls()
    try:
        payload.ParseFromString(event.data.value)
    except DecodeError as exc:
        raise EnvelopeError(f"event {event.id}: payload {name} does not decode: {exc}") from exc
    declared = _event_type(cls.DESCRIPTOR)
    if declared != event.type:
        raise EnvelopeError(
            f"event {event.id}: type {event.type!r} but payload {name} is {declared!r}"
        )
    return payload


@functools.lru_cache(maxsize=256)
def _class_named(name: str) -> type[message.Message] | None:
    try:
        desc = descriptor_pool.Default().FindMessageTypeByName(name)
    except KeyError:
        return None
    return message_factory.GetMessageClass(desc)


@dataclass(frozen=True)
class ReceivedEvent:
    """An event as a subscriber's handler gets it.

    Attributes:
        envelope: The envelope, with the CloudEvents attributes.
        subject: The NATS subject it arrived on.
        stream_sequence: Its sequence number in the event stream.
        attempt: Which delivery this is, from 1.
        trace: The trace context it carried.
    """

    envelope: event_pb2.Event
    subject: str
    stream_sequence: int = 0
    attempt: int = 1
    trace: TraceContext | None = None
    _payload: list[message.Message] = field(default_factory=list, repr=False, compare=False)

    @property
    def id(self) -> str:
        """The event id."""
        return self.envelope.id

    @property
    def type(self) -> str:
        """The event type, for example ``user.created``."""
        return self.envelope.type

    @property
    def source(self) -> str:
        """The producer, ``/plugmesh/<service>``."""
        return self.envelope.source

    @property
    def time(self) -> dt.datetime:
        """When the change happened at the producer (UTC)."""
        return self.envelope.time.ToDatetime(tzinfo=dt.UTC)

    @property
    def payload(self) -> message.Message:
        """The unpacked payload (see :func:`unpack_payload`); decoded once.

        Raises:
            UnknownEventType: No generated code for the payload type is loaded.
            EnvelopeError: The payload does not decode or carries another type.
        """
        if not self._payload:
            self._payload.append(unpack_payload(self.envelope))
        return self._payload[0]
