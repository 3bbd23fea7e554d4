"""ListAuditEntries: filters, page sizes and a cursor that holds while entries arrive."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2

from meshkit.errors import error_info
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import event_pb2
from tests.services.audit.conftest import ADMIN, Audit, append_many, signed

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
USER, MACHINE, SERVICE = (
    event_pb2.ACTOR_TYPE_USER,
    event_pb2.ACTOR_TYPE_MACHINE,
    event_pb2.ACTOR_TYPE_SERVICE,
)
SUCCESS, FAILURE, DENIED = (
    audit_pb2.OUTCOME_SUCCESS,
    audit_pb2.OUTCOME_FAILURE,
    audit_pb2.OUTCOME_DENIED,
)

# entry id, actor type, actor id, action, resource, outcome, hours after T0
ENTRIES = [
    ("e1", USER, "alice", "user.created", "users/u-1", SUCCESS, 0),
    ("e2", USER, "alice", "user.updated", "users/alice", SUCCESS, 1),
    ("e3", USER, "bob", "auth.login", "users/bob", DENIED, 2),
    ("e4", MACHINE, "mu-1", "tool.call.completed", "tools/github/create_issue", FAILURE, 3),
    ("e5", SERVICE, "gateway", "tool.call.failed", "tools/github/create_issue", DENIED, 4),
    ("e6", USER, "admin-1", "user_created", "", SUCCESS, 5),
    ("e7", USER, "admin-1", "User.Created", "", SUCCESS, 6),
]


def stamp(hours: float) -> timestamp_pb2.Timestamp:
    result = timestamp_pb2.Timestamp()
    result.FromDatetime(T0 + dt.timedelta(hours=hours))
    return result


async def seed(audit: Audit) -> None:
    for entry_id, actor_type, actor_id, action, resource, outcome, hours in ENTRIES:
        await audit.create(
            entry_id=entry_id,
            actor=event_pb2.Actor(type=actor_type, id=actor_id),
            action=action,
            resource=resource,
            outcome=outcome,
            occur_time=stamp(hours),
        )


async def list_ids(audit: Audit, **filters: object) -> list[str]:
    request = audit_pb2.ListAuditEntriesRequest(**filters)  # type: ignore[arg-type]  # test shorthand
    response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    return [entry.entry_id for entry in response.entries]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({}, ["e7", "e6", "e5", "e4", "e3", "e2", "e1"], id="none-newest-first"),
        pytest.param({"user_id": "alice"}, ["e2", "e1"], id="user_id"),
        pytest.param({"actor_type": MACHINE}, ["e4"], id="actor_type"),
        pytest.param({"action": "user.*"}, ["e2", "e1"], id="action-prefix"),
        pytest.param({"action": "auth.login"}, ["e3"], id="action-exact"),
        pytest.param({"action": "auth"}, [], id="action-is-not-a-substring"),
        pytest.param({"action": "*.completed"}, ["e4"], id="action-suffix"),
        pytest.param({"action": "tool.*.failed"}, ["e5"], id="action-middle"),
        pytest.param({"action": "user_*"}, ["e6"], id="action-underscore-literal"),
        pytest.param({"action": "User.*"}, ["e7"], id="action-case-sensitive"),
        pytest.param({"resource": "tools/github/create_issue"}, ["e5", "e4"], id="resource"),
        pytest.param({"outcome": DENIED}, ["e5", "e3"], id="outcome"),
        pytest.param({"start_time": stamp(5)}, ["e7", "e6"], id="start-inclusive"),
        pytest.param({"end_time": stamp(1)}, ["e1"], id="end-exclusive"),
        pytest.param({"start_time": stamp(1), "end_time": stamp(3)}, ["e3", "e2"], id="range"),
        pytest.param({"user_id": "alice", "action": "user.updated"}, ["e2"], id="combined"),
    ],
)
async def test_filters_select_matching_entries_newest_first(
    audit: Audit, filters: dict[str, object], expected: list[str]
) -> None:
    await seed(audit)
    assert await list_ids(audit, **filters) == expected


async def walk(audit: Audit, page_size: int, **filters: object) -> list[str]:
    """Every entry id over all pages, in order."""
    seen: list[str] = []
    token = ""
    for _ in range(10_000):
        fields: dict[str, Any] = {**filters, "page_size": page_size, "page_token": token}
        request = audit_pb2.ListAuditEntriesRequest(**fields)
        response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
        assert len(response.entries) <= page_size
        seen += [entry.entry_id for entry in response.entries]
        token = response.next_page_token
        if not token:
            return seen
    raise AssertionError("the walk did not end")


@pytest.mark.parametrize("page_size", [1, 2, 3, 7, 8, 100])
async def test_pages_of_any_size_return_every_entry_once(audit: Audit, page_size: int) -> None:
    await seed(audit)
    assert await walk(audit, page_size) == ["e7", "e6", "e5", "e4", "e3", "e2", "e1"]
    assert await walk(audit, page_size, action="user.*") == ["e2", "e1"]


async def test_a_walk_while_entries_arrive_skips_nothing_and_repeats_nothing(audit: Audit) -> None:
    await append_many(audit, 250)
    before = await walk(audit, 1000)
    assert len(before) == 250
    stop = asyncio.Event()

    async def keep_appending() -> int:
        appended = 0
        while not stop.is_set():
            await audit.create(action="arrived.during.walk")
            appended += 1
            await asyncio.sleep(0)
        return appended

    writer = asyncio.create_task(keep_appending())
    try:
        seen: list[str] = []
        token = ""
        while True:
            request = audit_pb2.ListAuditEntriesRequest(page_size=9, page_token=token)
            response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
            seen += [entry.entry_id for entry in response.entries]
            await append_many(audit, 3)  # and a few more between every two pages
            token = response.next_page_token
            if not token:
                break
    finally:
        stop.set()
        appended = await writer
    assert appended > 0
    assert len(seen) == len(set(seen)), "an entry came twice"
    assert set(before) <= set(seen), "an entry that existed when the walk began was skipped"


@pytest.mark.parametrize(
    ("page_size", "returned"),
    [
        pytest.param(0, 100, id="default-100"),
        pytest.param(1000, 1000, id="maximum"),
        pytest.param(5000, 1000, id="lowered-to-1000"),
    ],
)
async def test_page_size_defaults_and_caps(audit: Audit, page_size: int, returned: int) -> None:
    await append_many(audit, 1005)
    request = audit_pb2.ListAuditEntriesRequest(page_size=page_size)
    response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    assert len(response.entries) == returned
    assert response.next_page_token


async def test_the_last_page_has_no_token(audit: Audit) -> None:
    await seed(audit)
    request = audit_pb2.ListAuditEntriesRequest(page_size=7)
    response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    assert len(response.entries) == 7
    assert response.next_page_token == ""


async def first_token(audit: Audit) -> str:
    request = audit_pb2.ListAuditEntriesRequest(page_size=1, action="user.*")
    response = await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    return response.next_page_token


@pytest.mark.parametrize(
    ("request_fields", "field", "reason"),
    [
        pytest.param({"page_size": -1}, "page_size", "INVALID_FIELD", id="negative-page-size"),
        pytest.param(
            {"page_token": "not-a-token"}, "page_token", "INVALID_FIELD", id="garbage-token"
        ),
        pytest.param(
            {"page_token": "eyJ2IjoxLCJiZWZvcmUiOjAsImYiOiJ4In0"},
            "page_token",
            "INVALID_FIELD",
            id="forged-token",
        ),
        pytest.param(
            {"start_time": stamp(3), "end_time": stamp(1)},
            "end_time",
            "INVALID_FIELD",
            id="end-before-start",
        ),
        pytest.param(
            {"start_time": timestamp_pb2.Timestamp(nanos=-826)},
            "start_time",
            "INVALID_FIELD",
            id="negative-nanos",
        ),
        pytest.param(
            {"end_time": timestamp_pb2.Timestamp(seconds=-(2**62))},
            "end_time",
            "INVALID_FIELD",
            id="before-year-1",
        ),
    ],
)
async def test_malformed_requests_are_refused_naming_the_field(
    audit: Audit, request_fields: dict[str, object], field: str, reason: str
) -> None:
    request = audit_pb2.ListAuditEntriesRequest(**request_fields)  # type: ignore[arg-type]  # test shorthand
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info is not None
    assert (info.reason, info.metadata["field"]) == (reason, field)


async def test_a_token_is_refused_with_other_filters(audit: Audit) -> None:
    await seed(audit)
    token = await first_token(audit)
    assert token
    request = audit_pb2.ListAuditEntriesRequest(page_size=1, action="auth.*", page_token=token)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.stub.ListAuditEntries(request, metadata=signed(ADMIN))
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "other filters" in (caught.value.details() or "")
