"""``plugmesh.audit.v1.AuditService``: requests in, responses out.

Each method authorizes the caller (:mod:`services.audit.access`), translates the request
into domain terms (:mod:`services.audit.convert`, which validates and names the field that
is wrong), asks :class:`~services.audit.core.AuditLog`, and translates the answer back.
Errors are :mod:`meshkit.errors` exceptions; the server's interceptor turns them into
``google.rpc.Status``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from meshkit.errors import NotFound, invalid_field
from meshkit.grpc_types import Context
from meshkit.paging import decode_page_token, encode_page_token, page_size
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.access import Access, actor_of
from services.audit.convert import (
    draft_from_proto,
    entry_to_proto,
    filter_from_proto,
    filters_fingerprint,
    verification_to_proto,
)
from services.audit.core import AuditLog
from services.audit.model import Visibility

__all__ = ["DEFAULT_PAGE_SIZE", "AuditServicer"]

DEFAULT_PAGE_SIZE = 100


class AuditServicer(audit_pb2_grpc.AuditServiceServicer):
    """Serves the audit API over an :class:`~services.audit.core.AuditLog`.

    Args:
        audit_log: The chain.
        access: Who may do what.
    """

    def __init__(self, audit_log: AuditLog, access: Access) -> None:
        self._log = audit_log
        self._access = access

    async def ListAuditEntries(
        self, request: audit_pb2.ListAuditEntriesRequest, context: Context
    ) -> audit_pb2.ListAuditEntriesResponse:
        """One page of matching entries the caller may read, newest first."""
        visibility = self._access.reader(context)
        where = filter_from_proto(request)
        size = page_size(request.page_size, default=DEFAULT_PAGE_SIZE)
        fingerprint = filters_fingerprint(where)
        before = decode_page_token(request.page_token, fingerprint)
        entries = await self._log.page(where, visibility, before_sequence=before, limit=size + 1)
        response = audit_pb2.ListAuditEntriesResponse(
            entries=[entry_to_proto(entry) for entry in entries[:size]]
        )
        if len(entries) > size:
            response.next_page_token = encode_page_token(entries[size - 1].sequence, fingerprint)
        return response

    async def GetAuditEntry(
        self, request: audit_pb2.GetAuditEntryRequest, context: Context
    ) -> audit_pb2.GetAuditEntryResponse:
        """One entry, when it exists and the caller may read it."""
        visibility = self._access.reader(context)
        if not request.entry_id:
            raise invalid_field("entry_id", "is required")
        entry = await self._log.get(request.entry_id, visibility)
        if entry is None:
            raise NotFound(
                f"audit entry {request.entry_id!r} does not exist",
                reason="AUDIT_ENTRY_NOT_FOUND",
                metadata={"entry_id": request.entry_id},
            )
        return audit_pb2.GetAuditEntryResponse(entry=entry_to_proto(entry))

    async def CreateAuditEntry(
        self, request: audit_pb2.CreateAuditEntryRequest, context: Context
    ) -> audit_pb2.CreateAuditEntryResponse:
        """Append an entry; with the entry_id of an existing one, return that one."""
        caller = self._access.writer(context)
        if not request.HasField("entry"):
            raise invalid_field("entry", "is required")
        draft = draft_from_proto(request.entry, caller=actor_of(caller))
        entry, _ = await self._log.create(draft)
        return audit_pb2.CreateAuditEntryResponse(entry=entry_to_proto(entry))

    async def ExportAuditEntries(
        self, request: audit_pb2.ExportAuditEntriesRequest, context: Context
    ) -> AsyncIterator[audit_pb2.ExportAuditEntriesResponse]:
        """Stream every matching entry above after_sequence, oldest first."""
        self._access.admin(context, "exporting the audit log")
        if request.after_sequence < 0:
            raise invalid_field("after_sequence", "must not be negative")
        where = filter_from_proto(request)
        visibility = Visibility(everything=True)  # the caller is an admin
        async for entry in self._log.export(
            where, visibility, after_sequence=request.after_sequence
        ):
            yield audit_pb2.ExportAuditEntriesResponse(entry=entry_to_proto(entry))

    async def VerifyAuditChain(
        self, request: audit_pb2.VerifyAuditChainRequest, context: Context
    ) -> audit_pb2.VerifyAuditChainResponse:
        """Walk the chain over the requested range and report the first broken link."""
        self._access.admin(context, "verifying the audit chain")
        start, end = request.start_sequence, request.end_sequence
        if start < 0:
            raise invalid_field("start_sequence", "must not be negative")
        if end < 0:
            raise invalid_field("end_sequence", "must not be negative")
        if end and end < start:
            raise invalid_field("end_sequence", "must not be below start_sequence")
        return verification_to_proto(await self._log.verify(start, end))
