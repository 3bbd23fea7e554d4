"""The last ROLE_ADMIN user can be neither deleted nor demoted, even by concurrent calls
on two replicas."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import grpc
import pytest

from plugmesh.users.v1 import users_pb2
from tests.services.users.support import Api, failure

ADMIN_ROLE, USER_ROLE = users_pb2.ROLE_ADMIN, users_pb2.ROLE_USER
REFUSED = grpc.StatusCode.FAILED_PRECONDITION


def _demote(api: Api, user_id: str, paths: list[str] | None = None) -> Awaitable[object]:
    return api.update(users_pb2.User(user_id=user_id, role=USER_ROLE), paths or ["role"])


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda api: api.delete("root"), id="delete"),
        pytest.param(lambda api: _demote(api, "root"), id="demote"),
        pytest.param(
            lambda api: api.update(users_pb2.User(user_id="root", display_name="R"), ["*"]),
            id="replace-all-without-role",
        ),
    ],
)
async def test_the_last_admin_cannot_be_removed(api: Api, change: object) -> None:
    await api.create("root", role=ADMIN_ROLE)
    await api.create("someone")
    assert callable(change)
    got = await failure(change(api))
    assert (got.code, got.reason, got.metadata) == (REFUSED, "LAST_ADMIN", {"user_id": "root"})
    assert "last ROLE_ADMIN user" in got.message
    user = await api.get("root")
    assert (user.role, user.revision) == (ADMIN_ROLE, 1)


async def test_an_admin_can_go_once_another_remains(api: Api) -> None:
    await api.create("root", role=ADMIN_ROLE)
    await api.create("heir", role=ADMIN_ROLE)
    await _demote(api, "root")
    await api.update(users_pb2.User(user_id="root", role=ADMIN_ROLE))
    await api.delete("heir")
    assert (await failure(api.delete("root"))).code is REFUSED
    # Other changes of the last admin are fine.
    renamed = await api.update(users_pb2.User(user_id="root", display_name="Root"))
    assert renamed.role == ADMIN_ROLE


async def test_without_any_admin_there_is_nothing_to_protect(api: Api) -> None:
    await api.create("plain")
    await api.delete("plain")


@pytest.mark.parametrize("admins", [2, 3, 5])
@pytest.mark.parametrize("how", ["demote", "delete", "mixed"])
async def test_concurrent_removals_on_two_replicas_leave_one_admin(
    api: Api, twin_api: Api, admins: int, how: str
) -> None:
    ids = [f"admin-{n}" for n in range(admins)]
    for user_id in ids:
        await api.create(user_id, role=ADMIN_ROLE)
    replicas = [api, twin_api]

    def remove(n: int) -> Awaitable[object]:
        replica = replicas[n % 2]
        delete = how == "delete" or (how == "mixed" and n % 2 == 1)
        return replica.delete(ids[n]) if delete else _demote(replica, ids[n])

    results = await asyncio.gather(*(remove(n) for n in range(admins)), return_exceptions=True)
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert [r.code() for r in refused] == [REFUSED], results
    remaining = await api.list(role=ADMIN_ROLE)
    assert len(remaining.users) == 1
