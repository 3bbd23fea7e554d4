"""Who may read and write the log, with identities signed as the gateway signs them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
import pytest

from meshkit.errors import error_info
from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY, Identity, PrincipalKind
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import event_pb2
from tests.services.audit.conftest import (
    ADMIN,
    ALICE,
    BOB,
    GATEWAY,
    ROBOT,
    Audit,
    Metadata,
    signed,
)

USER, MACHINE = event_pb2.ACTOR_TYPE_USER, event_pb2.ACTOR_TYPE_MACHINE
ANONYMOUS: Metadata = ()
FORGED: Metadata = (
    (IDENTITY_KEY, '{"admin":true,"email":"","kind":"user","sub":"mallory"}'),
    (SIGNATURE_KEY, "0" * 64),
)
UNSIGNED_ELSEWHERE: Metadata = tuple(
    (key, value)
    for key, value in signed(Identity(PrincipalKind.USER, "alice", admin=False))
    if key == IDENTITY_KEY
)

# entry id, actor type, actor id, resource
ENTRIES = [
    ("alice-acted", USER, "alice", "tools/github/create_issue"),
    ("about-alice", USER, "admin-1", "users/alice"),
    ("bob-acted", USER, "bob", "users/bob"),
    ("about-robot", USER, "admin-1", "machine-users/mu-1"),
    ("machine-named-alice", MACHINE, "alice", "tools/x/y"),
    ("robot-acted", MACHINE, "mu-1", "tools/x/y"),
]


async def seed(audit: Audit) -> None:
    for entry_id, actor_type, actor_id, resource in ENTRIES:
        await audit.create(
            entry_id=entry_id,
            actor=event_pb2.Actor(type=actor_type, id=actor_id),
            resource=resource,
        )


@pytest.mark.parametrize(
    ("metadata", "visible"),
    [
        pytest.param(signed(ADMIN), {entry[0] for entry in ENTRIES}, id="admin-sees-all"),
        pytest.param(signed(ALICE), {"alice-acted", "about-alice"}, id="user-sees-self"),
        pytest.param(signed(BOB), {"bob-acted"}, id="other-user"),
        pytest.param(signed(ROBOT), {"about-robot", "robot-acted"}, id="machine-sees-self"),
        pytest.param(signed(GATEWAY), set(), id="service-without-admin"),
    ],
)
async def test_readers_see_all_or_only_entries_about_themselves(
    audit: Audit, metadata: Metadata, visible: set[str]
) -> None:
    await seed(audit)

    listed = await audit.stub.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(), metadata=metadata
    )
    assert {entry.entry_id for entry in listed.entries} == visible

    for entry_id, *_ in ENTRIES:
        request = audit_pb2.GetAuditEntryRequest(entry_id=entry_id)
        if entry_id in visible:
            got = await audit.stub.GetAuditEntry(request, metadata=metadata)
            assert got.entry.entry_id == entry_id
        else:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await audit.stub.GetAuditEntry(request, metadata=metadata)
            assert caught.value.code() is grpc.StatusCode.NOT_FOUND


Call = Callable[[Audit, Metadata], Awaitable[object]]


async def _list(audit: Audit, metadata: Metadata) -> object:
    return await audit.stub.ListAuditEntries(audit_pb2.ListAuditEntriesRequest(), metadata=metadata)


async def _get(audit: Audit, metadata: Metadata) -> object:
    request = audit_pb2.GetAuditEntryRequest(entry_id="about-alice")
    return await audit.stub.GetAuditEntry(request, metadata=metadata)


async def _create(audit: Audit, metadata: Metadata) -> object:
    request = audit_pb2.CreateAuditEntryRequest(entry=audit_pb2.AuditEntry(action="x.y"))
    return await audit.stub.CreateAuditEntry(request, metadata=metadata)


async def _export(audit: Audit, metadata: Metadata) -> object:
    request = audit_pb2.ExportAuditEntriesRequest()
    return [r async for r in audit.stub.ExportAuditEntries(request, metadata=metadata)]


async def _verify(audit: Audit, metadata: Metadata) -> object:
    request = audit_pb2.VerifyAuditChainRequest()
    return await audit.stub.VerifyAuditChain(request, metadata=metadata)


OK = None
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.mark.parametrize(
    ("call", "metadata", "code"),
    [
        pytest.param(_list, ANONYMOUS, UNAUTHENTICATED, id="list-anonymous"),
        pytest.param(_list, FORGED, UNAUTHENTICATED, id="list-forged"),
        pytest.param(_list, UNSIGNED_ELSEWHERE, UNAUTHENTICATED, id="list-unsigned"),
        pytest.param(_get, ANONYMOUS, UNAUTHENTICATED, id="get-anonymous"),
        pytest.param(_get, signed(ALICE), OK, id="get-self"),
        pytest.param(_create, ANONYMOUS, UNAUTHENTICATED, id="create-anonymous"),
        pytest.param(_create, signed(ALICE), DENIED, id="create-user"),
        pytest.param(_create, signed(ROBOT), DENIED, id="create-machine"),
        pytest.param(_create, signed(GATEWAY), OK, id="create-service"),
        pytest.param(_create, signed(ADMIN), OK, id="create-admin"),
        pytest.param(_export, ANONYMOUS, UNAUTHENTICATED, id="export-anonymous"),
        pytest.param(_export, signed(ALICE), DENIED, id="export-user"),
        pytest.param(_export, signed(ADMIN), OK, id="export-admin"),
        pytest.param(_verify, ANONYMOUS, UNAUTHENTICATED, id="verify-anonymous"),
        pytest.param(_verify, signed(ALICE), DENIED, id="verify-user"),
        pytest.param(_verify, signed(GATEWAY), DENIED, id="verify-service"),
        pytest.param(_verify, signed(ADMIN), OK, id="verify-admin"),
    ],
)
async def test_each_method_admits_only_its_callers(
    audit: Audit, call: Call, metadata: Metadata, code: grpc.StatusCode | None
) -> None:
    await seed(audit)
    if code is None:
        await call(audit, metadata)
        return
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(audit, metadata)
    assert caught.value.code() is code
    info = error_info(caught.value)
    assert info is not None
    assert info.domain == "audit.plugmesh"
