"""The tool-pins plugin against rug pulls: an admin approves a server, and a tool that
appears or changes on it afterwards is hidden from every caller (and not callable),
announced once as ``tool_pin.definition_changed`` in the audit log, until an admin
approves the server again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from mcp import MCPError

from gateway.app import Gateway
from services.toolpins.app import ToolPinsPlugin, build
from services.toolpins.config import ToolPinsConfig
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp_hooks.calls import caller
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def pins(auth_mesh: Mesh, gateway: Gateway) -> AsyncIterator[ToolPinsPlugin]:
    """The tool-pins plugin in the mesh, its hook known to ``gateway``."""
    env = {
        "PLUGMESH_DATA_DIR": str(auth_mesh.data_dir),
        "PLUGMESH_NATS_URL": auth_mesh.nats.url,
        "PLUGMESH_REGISTRY_ADDRESS": auth_mesh.registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_TOOL_PINS_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
    }
    plugin = build(ToolPinsConfig.from_env(env))
    await plugin.server.start()

    async def known() -> bool | None:
        service = gateway.catalog.service("tool-pins")
        return True if service is not None and service.serving else None

    await eventually(known, timeout_seconds=30, what="the tool-pins plugin known")
    yield plugin
    await plugin.server.stop()


async def _approve(mesh: Mesh) -> dict[str, Any]:
    """Approve ``up`` through the mesh's gateway, once that gateway serves it."""
    admin = mesh.bearer(mesh.admin_token)

    async def approved() -> dict[str, Any] | None:
        response = await mesh.http.post("/v1/tool-pins/up:approve", json={}, headers=admin)
        if response.status_code == 400 and "SERVER_NOT_READY" in response.text:
            return None
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    found: dict[str, Any] = await eventually(approved, timeout_seconds=30, what="up approved")
    return found


async def _listed(gateway: Gateway, token: str) -> set[str]:
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def test_a_tool_added_after_the_approval_is_hidden_until_approved_again(
    auth_mesh: Mesh, gateway: Gateway, pins: ToolPinsPlugin
) -> None:
    _, token = await caller(auth_mesh)
    approved = await _approve(auth_mesh)
    pinned = {pin["tool"] for pin in approved["pins"]}
    assert {"echo", "grow"} <= pinned
    assert all(len(pin["digest"]) == 64 for pin in approved["pins"])
    before = await _listed(gateway, token)
    assert {f"up__{tool}" for tool in pinned} <= before

    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        added = (await client.call_tool("up__grow", {})).structured_content
    assert added is not None
    new = f"up__{added['result']}"

    await eventually(lambda: _serves(gateway, added["result"]), what="the new tool fetched")
    hidden = await _listed(gateway, token)
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        with pytest.raises(MCPError, match="Unknown tool"):
            await client.call_tool(new, {})

    assert new not in hidden
    assert hidden == before
    announced = await _announced(auth_mesh, added["result"])
    details = announced["details"]
    assert details.get("approvedDigest", "") == ""  # a tool added since: no pin
    assert len(details["currentDigest"]) == 64
    assert announced["details"]["server"] == "up"
    assert "description" in announced["details"]["changedFields"]

    # The approval takes the tools the mesh's own gateway serves: each gateway runs its
    # own stdio process of `up`, so that one must grow the same tool first.
    mesh_gateway = f"http://{auth_mesh.gateway.http_address}/mcp"
    async with connected(mesh_gateway, token, MODERN) as client:
        assert (await client.call_tool("up__grow", {})).structured_content == added
        await eventually(
            lambda: _serves(auth_mesh.gateway, added["result"]), what="grown there too"
        )
    await _approve(auth_mesh)
    assert new in await _listed(gateway, token)


async def test_pins_are_listed_and_deleted_by_admins_only(
    auth_mesh: Mesh, gateway: Gateway, pins: ToolPinsPlugin
) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    user = auth_mesh.bearer(auth_mesh.user_token)
    await _approve(auth_mesh)

    listed = await auth_mesh.http.get("/v1/tool-pins", params={"server": "up"}, headers=admin)
    refused = await auth_mesh.http.get("/v1/tool-pins", headers=user)
    deleted = await auth_mesh.http.delete("/v1/tool-pins/up", headers=admin)
    after = await auth_mesh.http.get("/v1/tool-pins", params={"server": "up"}, headers=admin)

    assert listed.status_code == 200, listed.text
    assert {pin["server"] for pin in listed.json()["pins"]} == {"up"}
    assert refused.status_code == 403
    assert deleted.status_code == 200, deleted.text
    assert after.json().get("pins", []) == []


async def test_approving_a_server_the_gateway_does_not_have_is_not_found(
    auth_mesh: Mesh, pins: ToolPinsPlugin
) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    response = await auth_mesh.http.post("/v1/tool-pins/nope:approve", json={}, headers=admin)

    assert response.status_code == 404, response.text


async def _serves(gateway: Gateway, tool: str) -> bool | None:
    upstream = gateway.mcp_upstreams.get("up")
    names = {found.name for found in upstream.tools} if upstream is not None else set()
    return True if tool in names else None


async def _announced(mesh: Mesh, tool: str) -> dict[str, Any]:
    """The audit entry of the definition change of ``tool`` on ``up``."""
    admin = mesh.bearer(mesh.admin_token)

    async def recorded() -> dict[str, Any] | None:
        response = await mesh.http.get(
            "/v1/audit/entries",
            params={"action": "tool_pin.definition_changed", "pageSize": 100},
            headers=admin,
        )
        entries = [e for e in response.json().get("entries", []) if e["details"]["tool"] == tool]
        assert len(entries) <= 1, "announced once"
        return entries[0] if entries else None

    found: dict[str, Any] = await eventually(recorded, timeout_seconds=30, what="announced")
    return found
