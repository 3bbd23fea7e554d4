"""Plugin RPCs as MCP tools, in a real mesh: the RPCs marked with
``(plugmesh.options.v1.tool)`` are tools of servers named after their plugins, with the
request's JSON Schema as input and the response as ``structuredContent``, under the
callers' permissions, the RPC's access, the hooks and the audit, like any tool."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from mcp import Client, MCPError

from gateway.app import Gateway
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from services.secretsguard.app import build as build_secrets_guard
from services.secretsguard.config import SecretsGuardConfig
from tests.gateway.auth.mesh import SECRET, Mesh, person_jwt
from tests.gateway.mcp.clients import ERAS, MODERN, connected
from tests.gateway.mcp.conftest import ISSUER
from tests.gateway.mcp.federating import federating
from tests.gateway.mcp_hooks.calls import decisions, text
from tests.gateway.mcp_hooks.conftest import PRE, hooks, plan
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: The tools the first-party plugins of the auth mesh offer, as listed on /mcp.
OFFERED = {
    "audit__get_audit_entry",
    "audit__list_audit_entries",
    "audit__verify_audit_chain",
    "registry__get_service",
    "registry__list_services",
    "users__check_permission",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    """A gateway federating ``up`` beside the mesh's plugins."""
    async with federating(auth_mesh) as running:

        async def offered() -> bool | None:
            return _exposed(running) >= OFFERED or None

        await eventually(offered, timeout_seconds=30, what="the plugins' tools offered")
        yield running


def _exposed(gateway: Gateway) -> set[str]:
    offered = gateway.plugin_tools.offered()
    return {f"{server}__{name}" for server, tools in offered.items() for name in tools}


async def machine_user(mesh: Mesh, *patterns: str, admin: bool = False) -> tuple[str, str]:
    """A new machine user allowed ``patterns`` (``server/tool`` globs): id and token."""
    rules = [users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=p) for p in patterns]
    created = await mesh.create_machine_user(
        f"tools-{uuid.uuid4().hex[:8]}",
        admin=admin,
        permissions=users_pb2.Permissions(rules=rules),
    )
    return created.machine_user.machine_user_id, created.token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin(auth_mesh: Mesh) -> str:
    """The token of an admin who may call every tool."""
    return (await machine_user(auth_mesh, "*/*", admin=True))[1]


async def listed(client: Client) -> dict[str, Any]:
    """Every tool of the view, following the cursors: name -> tool as JSON."""
    tools: dict[str, Any] = {}
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        for tool in page.tools:
            tools[tool.name] = tool.model_dump(mode="json", by_alias=True, exclude_none=True)
        cursor = page.next_cursor
        if not cursor:
            return tools


async def call(gateway: Gateway, token: str, name: str, arguments: dict[str, Any]) -> Any:
    """Call tool ``name`` on /mcp: the result as JSON."""
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        result = await client.call_tool(name, arguments)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


async def audited(mesh: Mesh, actor: str, tool: str) -> list[dict[str, Any]]:
    """The audit entries of ``actor``'s one call of ``tool``, oldest first."""
    admin = mesh.bearer(mesh.admin_token)

    async def both() -> list[dict[str, Any]] | None:
        response = await mesh.http.get(
            "/v1/audit/entries",
            params={"action": "tool.call.*", "userId": actor, "pageSize": 10},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        entries = [e for e in response.json().get("entries", []) if e["details"]["tool"] == tool]
        return entries[::-1] if len(entries) == 2 else None

    found: list[dict[str, Any]] = await eventually(
        both, timeout_seconds=30, what=f"the call of {tool} audited"
    )
    return found


@pytest.mark.parametrize("mode", ERAS)
async def test_marked_rpcs_are_tools_of_servers_named_after_their_plugins(
    auth_mesh: Mesh, gateway: Gateway, admin: str, mode: str
) -> None:
    url = f"http://{gateway.http_address}/mcp"
    async with connected(url, admin, mode) as client:
        tools = await listed(client)

    assert set(tools) >= OFFERED
    assert "up__echo" in tools, "the upstream's tools are listed beside the plugins'"
    check = tools["users__check_permission"]
    assert check["title"] == "Check a permission"
    assert "which rule decided" in check["description"]
    schema = check["inputSchema"]
    assert schema["type"] == "object"
    assert set(schema["properties"]) == {"userId", "server", "tool"}
    # The fields' comments in users.proto, as plugmesh ships them beside its generated code.
    user_id = schema["properties"]["userId"]
    assert user_id["description"] == "The user whose permissions to evaluate."
    assert check["outputSchema"]["type"] == "object"
    allowed = check["outputSchema"]["properties"]["allowed"]
    assert allowed["description"] == "Whether the user may call the tool."
    assert check["annotations"]["readOnlyHint"] is True
    assert check["annotations"]["idempotentHint"] is True
    assert check["annotations"]["openWorldHint"] is False
    listing = tools["audit__list_audit_entries"]["inputSchema"]
    assert listing["properties"]["startTime"] == {
        "type": "string",
        "format": "date-time",
        "description": "Only entries that occurred at or after this time.",
    }
    assert listing["properties"]["outcome"]["type"] == "string"


async def test_a_plugins_view_lists_its_tools_under_their_own_names(
    auth_mesh: Mesh, gateway: Gateway, admin: str
) -> None:
    url = f"http://{gateway.http_address}/mcp/s/audit"
    async with connected(url, admin, MODERN) as client:
        tools = await listed(client)
        result = await client.call_tool("verify_audit_chain", {})

    assert set(tools) == {"get_audit_entry", "list_audit_entries", "verify_audit_chain"}
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["intact"] is True


async def test_a_call_answers_the_response_as_structured_content_and_as_json_text(
    auth_mesh: Mesh, gateway: Gateway, admin: str
) -> None:
    result = await call(gateway, admin, "registry__list_services", {})

    assert result["isError"] is False
    services = {s["name"]: s for s in result["structuredContent"]["services"]}
    assert {"audit", "users", "machine-users"} <= set(services)
    health = {i["health"] for i in services["users"]["instances"]}
    assert health == {"HEALTH_STATUS_SERVING"}
    (block,) = result["content"]
    assert json.loads(block["text"]) == result["structuredContent"]


async def test_a_caller_sees_and_calls_only_the_plugin_tools_its_rules_allow(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await machine_user(auth_mesh, "up/*", "registry/*")
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        tools = await listed(client)
        with pytest.raises(MCPError) as refused:
            await client.call_tool("users__check_permission", {"userId": actor})

    assert {name for name in tools if "__" in name and not name.startswith("up__")} == {
        "registry__get_service",
        "registry__list_services",
    }
    assert "Unknown tool" in refused.value.error.message
    _, failed = await audited(auth_mesh, actor, "check_permission")
    assert failed["action"] == "tool.call.failed"
    assert failed["details"]["error"]["message"] == "users/check_permission: no rule allows it"


async def test_an_admin_only_rpc_is_no_tool_of_callers_who_are_not_admins(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await machine_user(auth_mesh, "audit/*")
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        tools = await listed(client)
        with pytest.raises(MCPError) as refused:
            await client.call_tool("audit__verify_audit_chain", {})

    assert "audit__list_audit_entries" in tools
    assert "audit__verify_audit_chain" not in tools
    assert "Unknown tool" in refused.value.error.message
    _, failed = await audited(auth_mesh, actor, "verify_audit_chain")
    assert failed["details"]["error"]["message"] == "audit/verify_audit_chain: for admins only"


async def test_the_plugin_gets_the_callers_identity_and_applies_its_own_checks(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    person = f"tools-{uuid.uuid4().hex[:8]}"
    rules = [
        users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=pattern)
        for pattern in ("users/*", "up/echo")
    ]
    users: Any = users_pb2_grpc.UserServiceStub(auth_mesh.channel)
    await users.CreateUser(
        users_pb2.CreateUserRequest(
            user=users_pb2.User(user_id=person, permissions=users_pb2.Permissions(rules=rules))
        ),
        metadata=(("authorization", f"Bearer {auth_mesh.admin_token}"),),
    )
    token = person_jwt(person, iss=ISSUER)

    own = await call(
        gateway,
        token,
        "users__check_permission",
        {"userId": person, "server": "up", "tool": "echo"},
    )
    other = await call(
        gateway,
        token,
        "users__check_permission",
        {"userId": "someone-else", "server": "up", "tool": "echo"},
    )

    assert own["isError"] is False, own
    assert own["structuredContent"]["allowed"] is True
    assert own["structuredContent"]["matchedRule"]["rule"]["pattern"] == "up/echo"
    assert other["isError"] is True
    assert text(other).startswith("PERMISSION_DENIED: ")
    assert "structuredContent" not in other


async def test_arguments_that_do_not_fit_the_request_are_an_error_the_model_can_read(
    auth_mesh: Mesh, gateway: Gateway, admin: str
) -> None:
    result = await call(gateway, admin, "audit__verify_audit_chain", {"startSequence": "first"})

    assert result["isError"] is True
    assert "do not fit plugmesh.audit.v1.VerifyAuditChainRequest" in text(result)


async def test_a_plugin_tool_call_is_audited_with_its_plugin_as_server(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await machine_user(auth_mesh, "registry/*")

    result = await call(gateway, token, "registry__get_service", {"service": "audit"})

    assert result["structuredContent"]["service"]["name"] == "audit"
    started, completed = await audited(auth_mesh, actor, "get_service")
    assert started["action"] == "tool.call.started"
    assert started["details"]["server"] == "registry"
    assert completed["action"] == "tool.call.completed"
    assert completed["details"].get("isError", False) is False


async def test_hooks_see_plugin_tool_calls_like_any_other(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await machine_user(auth_mesh, "registry/*")
    gatekeeper = plan("gatekeeper", PRE, pre={"deny": "no listing today"}, match=["registry/*"])
    async with hooks(auth_mesh, gateway, gatekeeper):
        result = await call(gateway, token, "registry__list_services", {})

    assert result["isError"] is True
    assert "no listing today" in text(result)
    _, failed = await audited(auth_mesh, actor, "list_services")
    assert decisions(failed["details"]) == [("gatekeeper", "PRE_TOOL_CALL", "DENY", True)]


async def test_a_plugins_tools_come_and_go_with_it_and_listeners_hear_of_it(
    auth_mesh: Mesh, gateway: Gateway, admin: str
) -> None:
    url = f"http://{gateway.http_address}/mcp"
    async with (
        connected(url, admin, MODERN) as client,
        client.listen(tools_list_changed=True) as subscription,
    ):
        heard: list[object] = []
        listening = asyncio.create_task(_collect(subscription, heard))
        try:
            before = await listed(client)
            guard = build_secrets_guard(SecretsGuardConfig.from_env(_guard_env(auth_mesh)))
            await guard.start()
            try:
                await _offered(gateway, "secrets-guard", True)
                await eventually(_heard(heard, 1), timeout_seconds=10, what="list_changed")
                tools = await listed(client)
                detectors = await client.call_tool("secrets-guard__list_detectors", {})
                announced = len(heard)
            finally:
                await guard.stop()
            await _offered(gateway, "secrets-guard", False)
            await eventually(_heard(heard, announced + 1), timeout_seconds=10, what="again")
            after = await listed(client)
        finally:
            listening.cancel()

    assert "secrets-guard__list_detectors" not in before
    assert "secrets-guard__list_detectors" in tools
    assert detectors.structured_content is not None
    assert len(detectors.structured_content["detectors"]) >= 10
    assert "secrets-guard__list_detectors" not in after


async def _collect(subscription: AsyncIterator[object], heard: list[object]) -> None:
    async for event in subscription:
        heard.append(event)


def _heard(heard: list[object], count: int) -> Callable[[], Awaitable[bool | None]]:
    async def enough() -> bool | None:
        return len(heard) >= count or None

    return enough


def _guard_env(mesh: Mesh) -> dict[str, str]:
    return {
        "PLUGMESH_REGISTRY_ADDRESS": mesh.registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SECRETS_GUARD_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
    }


async def _offered(gateway: Gateway, server: str, present: bool) -> None:
    async def now() -> bool | None:
        return (server in gateway.plugin_tools.servers()) == present or None

    await eventually(now, timeout_seconds=30, what=f"{server}'s tools offered: {present}")
