"""Translation between ``plugmesh.audit.v1`` messages and the audit log's domain, with
validation.

The service module (:mod:`services.audit.service`) uses it for requests and responses,
and the event recorder (:mod:`services.audit.events`) for the actor an event names;
nothing else in the plugin sees protobuf. Errors name the field as the caller spelled it.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from meshkit.errors import invalid_field
from meshkit.paging import filters_digest
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import event_pb2
from services.audit.chain import format_time
from services.audit.model import (
    Actor,
    ActorType,
    BreakReason,
    Entry,
    EntryDraft,
    EntryFilter,
    JsonValue,
    Outcome,
    Verification,
)

__all__ = [
    "API_SOURCE",
    "MAX_DETAILS_BYTES",
    "actor_from_proto",
    "draft_from_proto",
    "entry_to_proto",
    "filter_from_proto",
    "filters_fingerprint",
    "verification_to_proto",
]

#: The source of entries written over the API.
API_SOURCE = "api"
MAX_DETAILS_BYTES = 64 * 1024

_ENTRY_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_ACTION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,254}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_MAX_TEXT = 1024

_ACTOR_TYPES = {
    event_pb2.ACTOR_TYPE_UNSPECIFIED: ActorType.UNSPECIFIED,
    event_pb2.ACTOR_TYPE_USER: ActorType.USER,
    event_pb2.ACTOR_TYPE_MACHINE: ActorType.MACHINE,
    event_pb2.ACTOR_TYPE_SYSTEM: ActorType.SYSTEM,
    event_pb2.ACTOR_TYPE_SERVICE: ActorType.SERVICE,
    event_pb2.ACTOR_TYPE_ANONYMOUS: ActorType.ANONYMOUS,
}
_ACTOR_TYPES_PB = {domain: pb for pb, domain in _ACTOR_TYPES.items()}
_OUTCOMES = {
    audit_pb2.OUTCOME_UNSPECIFIED: Outcome.UNSPECIFIED,
    audit_pb2.OUTCOME_SUCCESS: Outcome.SUCCESS,
    audit_pb2.OUTCOME_FAILURE: Outcome.FAILURE,
    audit_pb2.OUTCOME_DENIED: Outcome.DENIED,
    audit_pb2.OUTCOME_UNKNOWN: Outcome.UNKNOWN,
}
_OUTCOMES_PB = {domain: pb for pb, domain in _OUTCOMES.items()}
_BREAK_REASONS_PB = {
    BreakReason.HASH_MISMATCH: audit_pb2.BREAK_REASON_HASH_MISMATCH,
    BreakReason.PREVIOUS_HASH_MISMATCH: audit_pb2.BREAK_REASON_PREVIOUS_HASH_MISMATCH,
    BreakReason.SEQUENCE_GAP: audit_pb2.BREAK_REASON_SEQUENCE_GAP,
}


# --- domain → protobuf ---------------------------------------------------------------


def entry_to_proto(entry: Entry) -> audit_pb2.AuditEntry:
    """The wire form of ``entry``, output-only fields included."""
    details = struct_pb2.Struct()
    details.update(dict(entry.details))
    return audit_pb2.AuditEntry(
        entry_id=entry.entry_id,
        sequence=entry.sequence,
        occur_time=_timestamp(entry.occur_time),
        record_time=_timestamp(entry.record_time),
        actor=event_pb2.Actor(
            type=_ACTOR_TYPES_PB[entry.actor.type],
            id=entry.actor.id,
            display_name=entry.actor.display_name,
        ),
        action=entry.action,
        resource=entry.resource,
        outcome=_OUTCOMES_PB[entry.outcome],
        details=details,
        ip_address=entry.ip_address,
        user_agent=entry.user_agent,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
        source=entry.source,
        hash=entry.hash,
        previous_hash=entry.previous_hash,
    )


def verification_to_proto(result: Verification) -> audit_pb2.VerifyAuditChainResponse:
    """The VerifyAuditChain answer for what a walk found."""
    response = audit_pb2.VerifyAuditChainResponse(
        intact=result.intact,
        entries_checked=result.entries_checked,
        head_hash=result.head_hash,
    )
    if result.broken is not None:
        response.first_broken_entry_id = result.broken.entry_id
        response.first_broken_sequence = result.broken.sequence
        response.reason = _BREAK_REASONS_PB[result.broken.reason]
        response.message = result.broken.message
    return response


def _timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(time)
    return result


# --- protobuf → domain, validated ----------------------------------------------------


def actor_from_proto(actor: event_pb2.Actor) -> Actor:
    """The domain form of a ``plugmesh.events.v1.Actor``."""
    return Actor(
        type=_ACTOR_TYPES.get(actor.type, ActorType.UNSPECIFIED),
        id=actor.id,
        display_name=actor.display_name,
    )


def filter_from_proto(
    request: audit_pb2.ListAuditEntriesRequest | audit_pb2.ExportAuditEntriesRequest,
) -> EntryFilter:
    """The filters of a List or Export.

    Raises:
        InvalidArgument: A time is out of range, or the range is empty.
    """
    start = _time(request.start_time, "start_time") if request.HasField("start_time") else None
    end = _time(request.end_time, "end_time") if request.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise invalid_field("end_time", "must be after start_time")
    return EntryFilter(
        user_id=request.user_id,
        actor_type=_ACTOR_TYPES.get(request.actor_type, ActorType.UNSPECIFIED),
        action=request.action,
        resource=request.resource,
        outcome=_OUTCOMES.get(request.outcome, Outcome.UNSPECIFIED),
        start_time=start,
        end_time=end,
    )


def filters_fingerprint(where: EntryFilter) -> str:
    """The digest of a listing's filters its page tokens carry."""
    return filters_digest(
        where.user_id,
        where.actor_type.value,
        where.action,
        where.resource,
        where.outcome.value,
        format_time(where.start_time) if where.start_time else "",
        format_time(where.end_time) if where.end_time else "",
    )


def draft_from_proto(entry: audit_pb2.AuditEntry, *, caller: Actor) -> EntryDraft:
    """The entry a CreateAuditEntry asks for; ``caller`` is its actor when it names none.

    Raises:
        InvalidArgument: A field is malformed; the error names it.
    """
    entry_id = entry.entry_id or str(uuid.uuid4())
    if not _ENTRY_ID.match(entry_id):
        raise invalid_field("entry.entry_id", "must be 1-128 letters, digits, '_', '.', ':' or '-'")
    if not entry.action:
        raise invalid_field("entry.action", "is required")
    if not _ACTION.match(entry.action):
        raise invalid_field(
            "entry.action",
            f"{entry.action!r} is not a dotted name (letters, digits, '_', '.', ':', '/',"
            " '-'; at most 255)",
        )
    if entry.trace_id and not _TRACE_ID.match(entry.trace_id):
        raise invalid_field("entry.trace_id", "must be 32 lower-case hex digits")
    for name in ("resource", "ip_address", "user_agent", "request_id"):
        if len(getattr(entry, name)) > _MAX_TEXT:
            raise invalid_field(f"entry.{name}", f"is longer than {_MAX_TEXT} characters")
    named = entry.HasField("actor") and (entry.actor.type or entry.actor.id)
    return EntryDraft(
        entry_id=entry_id,
        action=entry.action,
        actor=actor_from_proto(entry.actor) if named else caller,
        occur_time=(
            _time(entry.occur_time, "entry.occur_time") if entry.HasField("occur_time") else None
        ),
        resource=entry.resource,
        outcome=_OUTCOMES.get(entry.outcome, Outcome.UNSPECIFIED),
        details=_details(entry),
        ip_address=entry.ip_address,
        user_agent=entry.user_agent,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
        source=API_SOURCE,
    )


def _details(entry: audit_pb2.AuditEntry) -> dict[str, JsonValue]:
    if entry.details.ByteSize() > MAX_DETAILS_BYTES:
        raise invalid_field("entry.details", f"is larger than {MAX_DETAILS_BYTES} bytes")
    try:
        details: dict[str, JsonValue] = json_format.MessageToDict(entry.details)
    except (json_format.Error, ValueError) as exc:
        raise invalid_field("entry.details", f"cannot be stored: {exc}") from exc
    return details


def _time(timestamp: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    try:
        return timestamp.ToDatetime(tzinfo=dt.UTC)
    except (OverflowError, ValueError):  # nanos outside [0, 1e9) or seconds past year 9999
        raise invalid_field(field, "is not a valid timestamp") from None
