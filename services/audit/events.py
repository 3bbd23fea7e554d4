"""Recording events: every event on the bus becomes one entry, exactly once.

The plugin subscribes to ``>`` with a durable consumer (:func:`subscribe`);
:class:`EventRecorder` runs inside the subscriber's transaction, so the entry and the inbox
row that marks the event handled commit together. The entry's id is the event id and
:meth:`AuditLog.append` skips an id it already holds, so even a redelivery the inbox has
forgotten appends nothing.

What an entry takes from an event:

| entry | from |
|---|---|
| entry_id, action, occur_time, resource, source | the envelope's id, type, time, subject, source |
| actor | the payload's ``actor`` field; the system (the source's service) when unset |
| outcome | the event type and payload (:func:`outcome_of`) |
| details | the payload as proto3 JSON (the JSON form of the envelope's ``Any``), redacted |
| ip_address, user_agent, request_id | payload fields of those names, when it has them |
| trace_id | the trace id of the ``traceparent`` header |

A payload this process has no generated code for is decoded with its producer's contract
from the registry (:mod:`services.audit.payloads`), so a plugin in any language that
declares its payloads in its own .proto files gets the same entries. One that cannot be
decoded even so is still recorded, with its type URL and bytes (base64) as details, as
the envelope's contract asks.
"""

from __future__ import annotations

import base64
import re

from google.protobuf import json_format, message
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.events import EnvelopeError, ReceivedEvent, UnknownEventType
from meshkit.events.bus import Subscriber
from plugmesh.events.v1 import event_pb2, registry_events_pb2, tool_events_pb2
from plugmesh.registry.v1 import registry_pb2
from services.audit.convert import actor_from_proto
from services.audit.core import AuditLog
from services.audit.model import Actor, ActorType, EntryDraft, JsonValue, Outcome
from services.audit.payloads import ContractPayloads

__all__ = [
    "REDACTED",
    "EventRecorder",
    "draft_of_event",
    "outcome_of",
    "redact",
    "subscribe",
]

REDACTED = "[REDACTED]"

# Keys that name a secret (proto3 JSON is lowerCamelCase): "token", "apiKey",
# "clientSecret", "password", … but not "tokenInfo" or "credentialFingerprint".
_SECRET_KEY = re.compile(
    r"(token|secret|password|passwd|api_?key|private_?key|authorization|credentials?)$",
    re.IGNORECASE,
)
_DENIED_CODES = frozenset({7, 16})  # google.rpc.Code PERMISSION_DENIED, UNAUTHENTICATED
_DOWN = frozenset({registry_pb2.HEALTH_STATUS_NOT_SERVING, registry_pb2.HEALTH_STATUS_UNREACHABLE})


class EventRecorder:
    """The subscriber's handlers: each appends the entry of the event it is given.

    The subscriber runs a batch in one transaction first and, if that fails, again with
    a savepoint per event. For the first pass it calls :meth:`append_new`, which does not
    look each id up (that lookup is most of an append's cost): an id the log already
    holds fails the batch on the unique index. The second pass calls the recorder itself,
    which looks ids up and skips the ones recorded.
    """

    def __init__(self, audit_log: AuditLog, payloads: ContractPayloads | None = None) -> None:
        self._log = audit_log
        self._payloads = payloads

    async def __call__(self, event: ReceivedEvent, session: AsyncSession) -> None:
        """Append the entry of ``event`` in the subscriber's transaction, unless its id
        is recorded."""
        await self._log.append(session, await self._draft(event))

    async def append_new(self, event: ReceivedEvent, session: AsyncSession) -> None:
        """Append the entry of ``event``, failing the transaction if its id is recorded."""
        await self._log.append(session, await self._draft(event), assume_new=True)

    async def _draft(self, event: ReceivedEvent) -> EntryDraft:
        payload: message.Message | None = None
        if self._payloads is not None and _payload_of(event) is None:
            payload = await self._payloads.decode(event)
        return draft_of_event(event, payload)


def subscribe(bus: Subscriber, recorder: EventRecorder) -> None:
    """Record every event of ``bus`` (subscribe before it starts)."""
    bus.subscribe(">", recorder, batch_handler=recorder.append_new)


def _payload_of(event: ReceivedEvent) -> message.Message | None:
    try:
        return event.payload
    except (UnknownEventType, EnvelopeError):
        return None


def draft_of_event(event: ReceivedEvent, payload: message.Message | None = None) -> EntryDraft:
    """The entry that records ``event``; ``payload`` when it was decoded by other means
    than the generated code of this process."""
    envelope = event.envelope
    if payload is None:
        payload = _payload_of(event)
    trace_id = event.trace.traceparent.split("-")[1] if event.trace is not None else ""
    return EntryDraft(
        entry_id=event.id,
        action=event.type,
        actor=_actor(payload, envelope.source),
        occur_time=event.time if envelope.HasField("time") else None,
        resource=envelope.subject,
        outcome=outcome_of(event.type, payload),
        details=_details(envelope, payload),
        ip_address=_string_field(payload, "ip_address"),
        user_agent=_string_field(payload, "user_agent"),
        request_id=_string_field(payload, "request_id"),
        trace_id=trace_id,
        source=envelope.source,
    )


def outcome_of(event_type: str, payload: message.Message | None) -> Outcome:
    """How the action an event reports ended.

    A tool call that started has no outcome yet; one that completed succeeded unless the
    tool reported an error; one that failed was denied when its error is
    PERMISSION_DENIED or UNAUTHENTICATED. A failed authentication, and a caller over a
    rate limit (its calls refused until the window ends), are denials. An
    instance whose health turned NOT_SERVING or UNREACHABLE, or whose lease expired, is a
    failure. Any other ``*.failed`` event is a failure, everything else a success. An
    undecodable payload of a tool call leaves the outcome unknown.
    """
    if isinstance(payload, tool_events_pb2.ToolCallCompleted):
        return Outcome.FAILURE if payload.is_error else Outcome.SUCCESS
    if isinstance(payload, tool_events_pb2.ToolCallFailed):
        return Outcome.DENIED if payload.error.code in _DENIED_CODES else Outcome.FAILURE
    if event_type == "tool.call.started" or (
        payload is None and event_type.startswith("tool.call.")
    ):
        return Outcome.UNKNOWN
    if event_type in ("auth.failed", "rate_limit.exceeded"):
        return Outcome.DENIED
    if isinstance(payload, registry_events_pb2.RegistryInstanceHealthChanged):
        return Outcome.FAILURE if payload.instance.health in _DOWN else Outcome.SUCCESS
    if event_type == "registry.instance.expired":
        return Outcome.FAILURE
    if event_type.endswith(".failed"):
        return Outcome.FAILURE
    return Outcome.SUCCESS


def redact(value: JsonValue) -> JsonValue:
    """``value`` with the value of every key that names a secret replaced by a marker."""
    if isinstance(value, dict):
        return {
            key: REDACTED if _SECRET_KEY.search(key) and item else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _actor(payload: message.Message | None, source: str) -> Actor:
    system = Actor(ActorType.SYSTEM, source.rstrip("/").rpartition("/")[2])
    if payload is None:
        return system
    field = payload.DESCRIPTOR.fields_by_name.get("actor")
    # By name: a payload decoded with its producer's contract has an Actor of another pool.
    if field is None or field.message_type is None:
        return system
    if field.message_type.full_name != event_pb2.Actor.DESCRIPTOR.full_name:
        return system
    if not payload.HasField("actor"):
        return system
    found: message.Message = getattr(payload, "actor")  # noqa: B009 - any payload type
    actor = event_pb2.Actor.FromString(found.SerializeToString())
    if actor.type == event_pb2.ACTOR_TYPE_UNSPECIFIED and not actor.id:
        return system
    return actor_from_proto(actor)


def _details(envelope: event_pb2.Event, payload: message.Message | None) -> dict[str, JsonValue]:
    if payload is not None:
        try:
            # The JSON form of the Any, also for a payload of a pool other than the default.
            details: JsonValue = {
                "@type": envelope.data.type_url,
                **json_format.MessageToDict(payload),
            }
        except (TypeError, ValueError, json_format.Error):
            pass
        else:
            if isinstance(details, dict):
                result = redact(details)
                assert isinstance(result, dict)
                return result
    return {
        "@type": envelope.data.type_url,
        "value": base64.b64encode(envelope.data.value).decode("ascii"),
    }


def _string_field(payload: message.Message | None, name: str) -> str:
    if payload is None:
        return ""
    field = payload.DESCRIPTOR.fields_by_name.get(name)
    if field is None or field.type != field.TYPE_STRING:
        return ""
    value = getattr(payload, name)
    return value if isinstance(value, str) else ""
