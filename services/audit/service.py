"""``plugmesh.audit.v1.AuditService``: where protobuf meets the audit log's domain.

Each method authorizes the caller (:mod:`services.audit.access`), translates the request
into domain objects, calls :class:`~services.audit.store.AuditStore` and translates the
result back. Errors are :mod:`meshkit.errors` exceptions naming the field; the server's
error interceptor turns them into ``google.rpc.Status``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator

from google.protobuf import json_format, struct_pb2, timestamp_pb2

from meshkit.errors import InvalidArgument, NotFound
from meshkit.grpc_types import Context
from meshkit.identity import Identity, from_metadata
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from plugmesh.events.v1 import event_pb2
from services.audit import access
from services.audit.model import (
    Actor,
    ActorType,
    BreakReason,
    Entry,
    EntryDraft,
    EntryFilter,
    JsonValue,
    Outcome,
)
from services.audit.paging import decode_token, encode_token, filter_digest
from services.audit.store import AuditStore

__all__ = ["API_SOURCE", "AuditServicer", "actor_from_proto"]


API_SOURCE = "api"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
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


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Serves the audit API over an :class:`AuditStore`.

    Args:
        store: The chain.
        identity_key: The key that verifies the gateway's identity metadata
            (:func:`meshkit.identity.signing_key`); without one every caller is anonymous.
    """

    def __init__(self, store: AuditStore, *, identity_key: bytes | None) -> None:
        self._store = store
        self._key = identity_key

    async def ListAuditEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: Context
    ) -> audit_pb2.ListAuditEntriesResponse:
        """One page of matching entries the caller may read, newest first."""
        visibility = access.visibility_of(self._caller(context))
        where = _filter(request)
        if request.page_size < 0:
            raise _invalid("page_size", "page_size must not be negative")
        size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        digest = filter_digest(where)
        before = decode_token(request.page_token, digest) if request.page_token else None
        entries = await self._store.page(where, visibility, before_sequence=before, limit=size + 1)
        token = encode_token(entries[size - 1].sequence, digest) if len(entries) > size else ""
        return audit_pb2.ListAuditEntriesResponse(
            entries=[_entry_pb(entry) for entry in entries[:size]], next_page_token=token
        )

    async def GetAuditEntry(
        self, request: audit_pb2.GetAuditEntryRequest, context: Context
    ) -> audit_pb2.GetAuditEntryResponse:
        """One entry, when it exists and the caller may read it."""
        visibility = access.visibility_of(self._caller(context))
        if not request.entry_id:
            raise _invalid("entry_id", "entry_id is required")
        entry = await self._store.get(request.entry_id, visibility)
        if entry is None:
            raise NotFound(
                f"audit entry {request.entry_id!r} does not exist",
                reason="AUDIT_ENTRY_NOT_FOUND",
                metadata={"entry_id": request.entry_id},
            )
        return audit_pb2.GetAuditEntryResponse(entry=_entry_pb(entry))

    async def CreateAuditEntry(
        self, request: audit_pb2.CreateAuditEntryRequest, context: Context
    ) -> audit_pb2.CreateAuditEntryResponse:
        """Append an entry; with the entry_id of an existing one, return that one."""
        caller = access.require_writer(self._caller(context))
        if not request.HasField("entry"):
            raise _invalid("entry", "entry is required")
        entry, _ = await self._store.create(_draft(request.entry, caller))
        return audit_pb2.CreateAuditEntryResponse(entry=_entry_pb(entry))

    async def ExportAuditEntries(
        self, request: audit_pb2.ExportAuditEntriesRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportAuditEntriesResponse]:
        """Stream every matching entry above after_sequence, oldest first."""
        caller = access.require_admin(self._caller(context), "exporting the audit log")
        if request.after_sequence < 0:
            raise _invalid("after_sequence", "after_sequence must not be negative")
        where = _filter(request)
        visibility = access.visibility_of(caller)
        async for entry in self._store.export(
            where, visibility, after_sequence=request.after_sequence
        ):
            yield audit_pb2.ExportAuditEntriesResponse(entry=_entry_pb(entry))

    async def VerifyAuditChain(
        self, request: audit_pb2.VerifyAuditChainRequest, context: Context
    ) -> audit_pb2.VerifyAuditChainResponse:
        """Walk the chain over the requested range and report the first broken link."""
        access.require_admin(self._caller(context), "verifying the audit chain")
        start, end = request.start_sequence, request.end_sequence
        if start < 0:
            raise _invalid("start_sequence", "start_sequence must not be negative")
        if end < 0:
            raise _invalid("end_sequence", "end_sequence must not be negative")
        if end and end < start:
            raise _invalid("end_sequence", "end_sequence must not be below start_sequence")
        result = await self._store.verify(start, end)
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

    def _caller(self, context: Context) -> Identity | None:
        return from_metadata(context.invocation_metadata(), self._key)


def actor_from_proto(actor: event_pb2.Actor) -> Actor:
    """The domain form of a ``plugmesh.events.v1.Actor``."""
    return Actor(
        type=_ACTOR_TYPES.get(actor.type, ActorType.UNSPECIFIED),
        id=actor.id,
        display_name=actor.display_name,
    )


def _filter(
    request: audit_pb2.ListAuditEntriesRequest | audit_pb2.ExportAuditEntriesRequest,
) -> EntryFilter:
    start = _time(request.start_time, "start_time") if request.HasField("start_time") else None
    end = _time(request.end_time, "end_time") if request.HasField("end_time") else None
    if start is not None and end is not None and end <= start:
        raise _invalid("end_time", "end_time must be after start_time")
    return EntryFilter(
        user_id=request.user_id,
        actor_type=_ACTOR_TYPES.get(request.actor_type, ActorType.UNSPECIFIED),
        action=request.action,
        resource=request.resource,
        outcome=_OUTCOMES.get(request.outcome, Outcome.UNSPECIFIED),
        start_time=start,
        end_time=end,
    )


def _draft(entry: audit_pb2.AuditEntry, caller: Identity) -> EntryDraft:
    entry_id = entry.entry_id or str(uuid.uuid4())
    if not _ENTRY_ID.match(entry_id):
        raise _invalid(
            "entry.entry_id",
            "entry.entry_id must be 1-128 letters, digits, '_', '.', ':' or '-'",
        )
    if not entry.action:
        raise _invalid("entry.action", "entry.action is required")
    if not _ACTION.match(entry.action):
        raise _invalid(
            "entry.action",
            f"entry.action {entry.action!r} is not a dotted name (letters, digits, '_', '.',"
            " ':', '/', '-'; at most 255)",
        )
    if entry.trace_id and not _TRACE_ID.match(entry.trace_id):
        raise _invalid("entry.trace_id", "entry.trace_id must be 32 lower-case hex digits")
    for name in ("resource", "ip_address", "user_agent", "request_id"):
        if len(getattr(entry, name)) > _MAX_TEXT:
            raise _invalid(f"entry.{name}", f"entry.{name} is longer than {_MAX_TEXT} characters")
    named = entry.HasField("actor") and (entry.actor.type or entry.actor.id)
    return EntryDraft(
        entry_id=entry_id,
        action=entry.action,
        actor=actor_from_proto(entry.actor) if named else access.actor_of(caller),
        occur_time=_time(entry.occur_time, "entry.occur_time")
        if entry.HasField("occur_time")
        else None,
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
        raise _invalid("entry.details", f"entry.details is larger than {MAX_DETAILS_BYTES} bytes")
    try:
        details: dict[str, JsonValue] = json_format.MessageToDict(entry.details)
    except (json_format.Error, ValueError) as exc:
        raise _invalid("entry.details", f"entry.details cannot be stored: {exc}") from exc
    return details


def _entry_pb(entry: Entry) -> audit_pb2.AuditEntry:
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


def _time(timestamp: timestamp_pb2.Timestamp, field: str) -> dt.datetime:
    try:
        return timestamp.ToDatetime(tzinfo=dt.UTC)
    except (OverflowError, ValueError):  # nanos outside [0, 1e9) or seconds past year 9999
        raise _invalid(field, f"{field} is not a valid timestamp") from None


def _timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(time)
    return result


def _invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_FIELD", metadata={"field": field})
