"""CreateAuditEntry: the seed's POST /logs, idempotent on entry_id, validated field by field."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2, timestamp_pb2

from meshkit.errors import error_info
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import event_pb2
from tests.services.audit.conftest import ADMIN, GATEWAY, Audit, signed


async def test_an_entry_is_stored_with_its_fields_sequence_and_hash(audit: Audit) -> None:
    details = struct_pb2.Struct()
    details.update({"tool": "create_issue", "arguments": {"title": "x", "n": 3}, "ok": True})
    occurred = timestamp_pb2.Timestamp(seconds=1_767_225_600, nanos=123_456_789)

    entry = await audit.create(
        entry_id="log-1",
        action="tool.call.completed",
        actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id="alice", display_name="A"),
        resource="tools/github/create_issue",
        outcome=audit_pb2.OUTCOME_SUCCESS,
        details=details,
        ip_address="192.0.2.1",
        user_agent="claude-code/1.0",
        request_id="req-1",
        trace_id="0af7651916cd43dd8448eb211c80319c",
        occur_time=occurred,
        sequence=99,  # output only: ignored
        hash="f" * 64,  # output only: ignored
    )

    assert entry.entry_id == "log-1"
    assert entry.sequence == 1
    assert entry.source == "api"
    assert entry.occur_time == timestamp_pb2.Timestamp(seconds=1_767_225_600, nanos=123_456_000)
    assert entry.record_time.ToDatetime() == audit.clock.now().replace(tzinfo=None)
    assert entry.details == details
    assert (entry.actor.id, entry.actor.display_name) == ("alice", "A")
    assert len(entry.hash) == 64
    assert entry.hash != "f" * 64
    got = await audit.stub.GetAuditEntry(
        audit_pb2.GetAuditEntryRequest(entry_id="log-1"), metadata=signed(ADMIN)
    )
    assert got.entry == entry


async def test_a_retry_with_the_same_entry_id_appends_nothing(audit: Audit) -> None:
    first = await audit.create(entry_id="retry-me", action="a.b")
    again = await audit.create(entry_id="retry-me", action="a.b")
    other = await audit.create(action="a.c")

    assert again == first
    assert other.sequence == 2
    assert (await audit.verify()).entries_checked == 2


@pytest.mark.parametrize(
    ("identity", "actor_type", "actor_id"),
    [
        pytest.param(ADMIN, event_pb2.ACTOR_TYPE_USER, "admin-1", id="admin-user"),
        pytest.param(GATEWAY, event_pb2.ACTOR_TYPE_SERVICE, "gateway", id="service"),
    ],
)
async def test_the_actor_defaults_to_the_caller(
    audit: Audit, identity: object, actor_type: int, actor_id: str
) -> None:
    entry = await audit.create(identity, action="a.b")  # type: ignore[arg-type]  # an Identity
    assert (entry.actor.type, entry.actor.id) == (actor_type, actor_id)


async def test_an_entry_without_an_id_gets_a_uuid(audit: Audit) -> None:
    first = await audit.create(action="a.b")
    second = await audit.create(action="a.b")
    assert len(first.entry_id) == 36
    assert first.entry_id != second.entry_id


def _big_details() -> struct_pb2.Struct:
    details = struct_pb2.Struct()
    details.update({"blob": "x" * 70_000})
    return details


def _nan_details() -> struct_pb2.Struct:
    details = struct_pb2.Struct()
    details.update({"n": float("nan")})
    return details


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        pytest.param(None, "entry", id="no-entry"),
        pytest.param(audit_pb2.AuditEntry(), "entry.action", id="no-action"),
        pytest.param(audit_pb2.AuditEntry(action="has space"), "entry.action", id="bad-action"),
        pytest.param(audit_pb2.AuditEntry(action="a" * 256), "entry.action", id="long-action"),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", entry_id="bad id"), "entry.entry_id", id="bad-id"
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", trace_id="xyz"), "entry.trace_id", id="bad-trace"
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", resource="r" * 1025),
            "entry.resource",
            id="long-resource",
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", details=_big_details()),
            "entry.details",
            id="big-details",
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", details=_nan_details()),
            "entry.details",
            id="nan-details",
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", occur_time=timestamp_pb2.Timestamp(nanos=-1)),
            "entry.occur_time",
            id="negative-nanos",
        ),
        pytest.param(
            audit_pb2.AuditEntry(action="a.b", occur_time=timestamp_pb2.Timestamp(seconds=2**62)),
            "entry.occur_time",
            id="past-year-9999",
        ),
    ],
)
async def test_a_malformed_entry_is_refused_naming_the_field(
    audit: Audit, entry: audit_pb2.AuditEntry | None, field: str
) -> None:
    request = audit_pb2.CreateAuditEntryRequest(entry=entry)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.stub.CreateAuditEntry(request, metadata=signed(ADMIN))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info is not None
    assert info.metadata["field"] == field
    assert (await audit.verify()).entries_checked == 0
