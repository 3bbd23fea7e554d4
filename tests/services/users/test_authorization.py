"""Who may call what: anonymous, forged, admins (by flag, by service), the user themself,
other users and machines, on every RPC.

A person is an admin when the identity the gateway signed says so; the plugin never looks
a role up itself (ARCHITECTURE.md, "Authorization"). That the gateway says so for a person
whose record has ROLE_ADMIN, and stops at once when they are demoted, is
tests/gateway/auth/test_tokens.py::test_a_person_whose_record_says_admin_is_an_admin.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
import pytest
import pytest_asyncio

from meshkit.identity import Identity, PrincipalKind, to_metadata
from plugmesh.users.v1 import users_pb2
from tests.services.users.support import ADMIN, ALICE, BOB, MACHINE, SERVICE, Api, failure

pytestmark = pytest.mark.asyncio(loop_scope="module")

OK = grpc.StatusCode.OK
DENIED = grpc.StatusCode.PERMISSION_DENIED
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED

#: A person whose user record has ROLE_ADMIN, as the gateway signs them: an admin.
ROOT = Identity(PrincipalKind.USER, "root", admin=True)
#: The same person in an identity that does not say admin (not as the gateway signs it).
ROOT_UNFLAGGED = Identity(PrincipalKind.USER, "root")
#: The admin identity, signed with a key that is not the mesh's.
FORGED = object()

Call = Callable[[Api, str, tuple[tuple[str, str], ...]], Awaitable[object]]


def _get(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.stub.GetUser(users_pb2.GetUserRequest(user_id=user_id), metadata=md)


def _check(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    request = users_pb2.CheckPermissionRequest(user_id=user_id, server="github", tool="x")
    return api.stub.CheckPermission(request, metadata=md)


def _list(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.stub.ListUsers(users_pb2.ListUsersRequest(), metadata=md)


def _create(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    request = users_pb2.CreateUserRequest(user=users_pb2.User(user_id=f"{user_id}-new"))
    return api.stub.CreateUser(request, metadata=md)


def _update(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    request = users_pb2.UpdateUserRequest(user=users_pb2.User(user_id=user_id, display_name="X"))
    return api.stub.UpdateUser(request, metadata=md)


def _permissions(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    request = users_pb2.UpdateUserPermissionsRequest(
        user_id=user_id, permissions=users_pb2.Permissions()
    )
    return api.stub.UpdateUserPermissions(request, metadata=md)


def _delete(api: Api, user_id: str, md: tuple[tuple[str, str], ...]) -> Awaitable[object]:
    return api.stub.DeleteUser(users_pb2.DeleteUserRequest(user_id=user_id), metadata=md)


RPCS: dict[str, tuple[Call, bool]] = {
    # name: (call, open to the user themself)
    "GetUser": (_get, True),
    "CheckPermission": (_check, True),
    "ListUsers": (_list, False),
    "CreateUser": (_create, False),
    "UpdateUser": (_update, False),
    "UpdateUserPermissions": (_permissions, False),
    "DeleteUser": (_delete, False),
}

# caller: (identity, expected for admin RPCs, expected for self RPCs on their own record)
CALLERS: dict[str, tuple[object, grpc.StatusCode, grpc.StatusCode]] = {
    "anonymous": (None, UNAUTHENTICATED, UNAUTHENTICATED),
    "forged": (FORGED, UNAUTHENTICATED, UNAUTHENTICATED),
    "admin-flag": (ADMIN, OK, OK),
    "service": (SERVICE, OK, OK),
    "role-admin": (ROOT, OK, OK),
    "role-admin-without-flag": (ROOT_UNFLAGGED, DENIED, DENIED),
    "self": (ALICE, DENIED, OK),
    "other-user": (BOB, DENIED, DENIED),
    "machine": (MACHINE, DENIED, DENIED),
}

CASES = [
    pytest.param(rpc, caller, id=f"{rpc}-{caller}")
    for rpc, caller in itertools.product(RPCS, CALLERS)
]
_ids = itertools.count()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(shared_api: Api) -> AsyncIterator[Api]:
    """``root`` has ROLE_ADMIN (and stays, so it is never the last admin); ``bob`` exists."""
    await shared_api.create("root", role=users_pb2.ROLE_ADMIN)
    await shared_api.create("root2", role=users_pb2.ROLE_ADMIN)
    await shared_api.create("bob")
    yield shared_api


@pytest.mark.parametrize(("rpc", "caller"), CASES)
async def test_authorization(seeded: Api, rpc: str, caller: str) -> None:
    call, open_to_self = RPCS[rpc]
    identity, admin_only, on_self = CALLERS[caller]
    # Each case acts on a user of its own, named like the caller when it is a person
    # (so "self" reads their own record).
    target = f"target-{next(_ids)}"
    if identity is ALICE:
        target = f"alice-{next(_ids)}"
        identity = Identity(PrincipalKind.USER, target, email=ALICE.email)
    await seeded.create(target)
    if identity is FORGED:
        metadata = to_metadata(ADMIN, b"not the mesh's key")
    else:
        assert identity is None or isinstance(identity, Identity)
        metadata = seeded.metadata(identity)
    expected = on_self if open_to_self else admin_only

    if expected is OK:
        await call(seeded, target, metadata)
    else:
        got = await failure(call(seeded, target, metadata))
        assert got.code is expected, got.message
        assert got.reason in {
            "AUTHENTICATION_REQUIRED",
            "IDENTITY_FORGED",
            "ADMIN_REQUIRED",
            "NOT_SELF",
        }


async def test_a_user_denied_another_user_is_not_told_whether_it_exists(seeded: Api) -> None:
    missing = await failure(seeded.get("nobody-at-all", by=BOB))
    existing = await failure(seeded.get("root", by=BOB))
    assert missing.code is existing.code is DENIED


async def test_admin_rights_follow_the_signed_identity_not_the_record(seeded: Api) -> None:
    await seeded.create("temp-admin", role=users_pb2.ROLE_ADMIN)
    await seeded.list(by=Identity(PrincipalKind.USER, "temp-admin", admin=True))
    unflagged = Identity(PrincipalKind.USER, "temp-admin")
    assert (await failure(seeded.list(by=unflagged))).code is DENIED
    await seeded.update(users_pb2.User(user_id="temp-admin", role=users_pb2.ROLE_USER), ["role"])
    assert (await failure(seeded.list(by=unflagged))).code is DENIED
