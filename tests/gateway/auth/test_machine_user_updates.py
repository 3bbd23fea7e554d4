"""UpdateMachineUser through the whole mesh: the gateway hears ``machine_user.updated``,
drops the machine user's cached token, and its next request (on an MCP session opened
before the edit, too) carries the new permissions or role; the audit log records the
update; CheckMachineUserPermission answers over HTTP as the editor expects.

The gateway authenticates every HTTP request to ``/mcp`` again (the session keeps no
caller), so a session open across the edit sees the change on its next ``tools/call``,
as a person's ``user.permissions.updated`` does (tests/gateway/mcp/test_mcp_federation.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from mcp import MCPError

from gateway.app import Gateway
from gateway.auth.cache import digest
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import CACHE_TTL_SECONDS, Mesh
from tests.gateway.mcp.clients import ERAS, connected
from tests.gateway.mcp.federating import federating
from tests.support.waiting import eventually, until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

#: An admin RPC (ListMachineUsers) for the role checks.
ADMIN_PATH = "/v1/machine-users"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def front(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    """A gateway of the mesh whose MCP front federates our test server as ``up``."""
    async with federating(auth_mesh) as gateway:
        yield gateway


def _cached(gateway: Gateway, token: str) -> bool:
    return gateway.auth.tokens.get(digest(token)) is not None


async def _until_dropped(gateway: Gateway, token: str) -> None:
    """Wait for the update's event to drop ``token`` from ``gateway``'s cache: far less
    than the cache's TTL, so only the event can have done it."""
    await until(
        lambda: not _cached(gateway, token),
        timeout_seconds=CACHE_TTL_SECONDS / 3,
        what="machine_user.updated to drop the cached token",
    )


async def _patch(auth_mesh: Mesh, machine_user_id: str, mask: str, body: dict[str, Any]) -> Any:
    """UpdateMachineUser over HTTP as the admin, as the README shows it."""
    response = await auth_mesh.http.patch(
        f"/v1/machine-users/{machine_user_id}",
        params={"updateMask": mask},
        json=body,
        headers=auth_mesh.bearer(auth_mesh.admin_token),
    )
    assert response.status_code == 200, response.text
    return response.json()["machineUser"]


def _allow(*patterns: str) -> users_pb2.Permissions:
    return users_pb2.Permissions(
        rules=[users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=p) for p in patterns]
    )


async def _refused(call: Any) -> str:
    with pytest.raises(MCPError) as refused:
        await call
    return str(refused.value)


@pytest.mark.parametrize("mode", ERAS)
async def test_new_permissions_apply_to_the_next_call_on_a_session_open_before_the_edit(
    auth_mesh: Mesh, front: Gateway, mode: str
) -> None:
    created = await auth_mesh.create_machine_user(
        f"edited-{mode}".replace(".", "").replace("-", ""), permissions=_allow("up/echo")
    )
    token = created.token
    machine_user_id = created.machine_user.machine_user_id
    url = f"http://{front.http_address}/mcp"

    async with connected(url, token, mode) as session:
        echoed = await session.call_tool("up__echo", {"text": "before"})
        assert echoed.content[0].text == "echo:before"  # type: ignore[union-attr]
        assert await _refused(session.call_tool("up__add", {"a": 1, "b": 2})) == (
            "Unknown tool: up__add"
        )
        assert _cached(front, token), "validated and cached by the MCP gateway"

        updated = await _patch(
            auth_mesh,
            machine_user_id,
            "permissions",
            {"permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "up/add"}]}},
        )
        assert [r["pattern"] for r in updated["permissions"]["rules"]] == ["up/add"]
        await _until_dropped(front, token)

        summed = await session.call_tool("up__add", {"a": 2, "b": 3})
        assert summed.structured_content == {"total": 5}
        assert await _refused(session.call_tool("up__echo", {"text": "after"})) == (
            "Unknown tool: up__echo"
        )


async def test_a_role_downgrade_refuses_the_next_admin_rpc(auth_mesh: Mesh) -> None:
    created = await auth_mesh.create_machine_user("demoted", admin=True)
    token = created.token
    first = await auth_mesh.http.get(ADMIN_PATH, headers=auth_mesh.bearer(token))
    assert first.status_code == 200, first.text
    assert _cached(auth_mesh.gateway, token)

    updated = await _patch(
        auth_mesh,
        created.machine_user.machine_user_id,
        "role,description",
        {"role": "ROLE_USER", "description": "demoted", "etag": created.machine_user.etag},
    )
    assert (updated["role"], updated["description"]) == ("ROLE_USER", "demoted")
    await _until_dropped(auth_mesh.gateway, token)
    refused = await auth_mesh.http.get(ADMIN_PATH, headers=auth_mesh.bearer(token))

    assert refused.status_code == 403, refused.text
    # Still authenticated: an RPC for any caller goes through.
    assert (await auth_mesh.http.get("/v1/services", headers=auth_mesh.bearer(token))).is_success


async def test_a_stale_etag_is_409_over_http(auth_mesh: Mesh) -> None:
    created = await auth_mesh.create_machine_user("etagged")
    machine_user_id = created.machine_user.machine_user_id
    await _patch(auth_mesh, machine_user_id, "description", {"description": "one"})

    stale = await auth_mesh.http.patch(
        f"/v1/machine-users/{machine_user_id}",
        params={"updateMask": "description"},
        json={"description": "two", "etag": created.machine_user.etag},
        headers=auth_mesh.bearer(auth_mesh.admin_token),
    )

    assert stale.status_code == 409, stale.text
    assert stale.json()["details"][0]["reason"] == "ETAG_MISMATCH"


async def test_the_audit_log_records_the_update_without_a_token(auth_mesh: Mesh) -> None:
    created = await auth_mesh.create_machine_user("audited")
    machine_user_id = created.machine_user.machine_user_id
    await _patch(auth_mesh, machine_user_id, "description", {"description": "audited now"})
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    async def recorded() -> list[dict[str, Any]] | None:
        response = await auth_mesh.http.get(
            "/v1/audit/entries",
            params={
                "action": "machine_user.updated",
                "resource": f"machine-users/{machine_user_id}",
            },
            headers=admin,
        )
        assert response.status_code == 200, response.text
        entries = [
            e
            for e in response.json()["entries"]
            if e["resource"] == f"machine-users/{machine_user_id}"
        ]
        return entries or None

    entries = await eventually(recorded, timeout_seconds=20, what="the audit entry")
    assert len(entries) == 1
    assert created.token[12:-4] not in str(entries)


@pytest.mark.parametrize(
    ("who", "status", "allowed"),
    [
        pytest.param("admin", 200, True, id="admin-checks-anyone"),
        pytest.param("self", 200, True, id="self"),
        pytest.param("other", 403, None, id="another-machine-user"),
    ],
)
async def test_check_permission_over_http(
    auth_mesh: Mesh, who: str, status: int, allowed: bool | None
) -> None:
    created = await auth_mesh.create_machine_user(f"checked-{who}", permissions=_allow("gh/*"))
    tokens = {
        "admin": auth_mesh.admin_token,
        "self": created.token,
        "other": auth_mesh.user_token,
    }

    response = await auth_mesh.http.post(
        f"/v1/machine-users/{created.machine_user.machine_user_id}:checkPermission",
        json={"server": "gh", "tool": "create_issue"},
        headers=auth_mesh.bearer(tokens[who]),
    )

    assert response.status_code == status, response.text
    if allowed is not None:
        assert response.json() == {
            "allowed": allowed,
            "reason": "DECISION_REASON_RULE",
            "matchedRule": {
                "index": 0,
                "rule": {
                    "effect": "EFFECT_ALLOW",
                    "pattern": "gh/*",
                    "description": "",
                },
            },
        }
