"""The event bus's errors.

Hierarchy::

    EventError                  any failure of the event bus
    ├── NotAnEventPayload       a message without the (plugmesh.options.v1.event) option
    ├── EnvelopeError           bytes that are not a valid plugmesh.events.v1.Event
    │   └── UnknownEventType    a payload type this process has no generated code for
    ├── StreamError             a stream could not be created or updated
    ├── DeadLetterNotFound      no dead letter with the id asked for
    └── EventBusStateError      a call that the bus's lifecycle state does not allow

Foreign errors (nats-py's, SQLAlchemy's) are translated where they cross into this
package, with ``raise … from exc``.
"""

from __future__ import annotations

__all__ = [
    "DeadLetterNotFound",
    "EnvelopeError",
    "EventBusStateError",
    "EventError",
    "NotAnEventPayload",
    "StreamError",
    "UnknownEventType",
]


class EventError(Exception):
    """Any failure of the event bus."""


class NotAnEventPayload(EventError, TypeError):
    """A message that is not an event payload (it lacks ``(plugmesh.options.v1.event)``)."""

    def __init__(self, message_name: str) -> None:
        super().__init__(
            f"{message_name} is not an event payload: it has no (plugmesh.options.v1.event) option"
        )
        self.message_name = message_name


class EnvelopeError(EventError, ValueError):
    """Bytes that do not hold a valid ``plugmesh.events.v1.Event``."""


class UnknownEventType(EnvelopeError):
    """An envelope whose payload type has no generated code in this process."""

    def __init__(self, type_url: str) -> None:
        super().__init__(f"no message class for payload type {type_url!r}")
        self.type_url = type_url


class StreamError(EventError):
    """A JetStream stream could not be created or brought up to date."""

    def __init__(self, stream: str, detail: str) -> None:
        super().__init__(f"stream {stream}: {detail}")
        self.stream = stream
        self.detail = detail


class DeadLetterNotFound(EventError, LookupError):
    """No dead letter has the id asked for."""

    def __init__(self, letter_id: str) -> None:
        super().__init__(f"no dead letter with sequence or event id {letter_id!r}")
        self.letter_id = letter_id


class EventBusStateError(EventError, RuntimeError):
    """A call made in a lifecycle state that does not allow it (for example after close)."""
