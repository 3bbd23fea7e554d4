"""A plugin in another language offers an RPC as a tool: the Node test plugin marks
``SendGreeting`` with ``(plugmesh.options.v1.tool)`` in its own proto; the gateway offers
it as ``node-greeter__send_greeting``, described by the RPC's comment (the option declares
no description), and the plugin acts for the caller it is given."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from gateway.app import Gateway
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp.federating import federating
from tests.gateway.node import NAME, NEEDS_NODE, NodePlugin
from tests.support.waiting import eventually

pytestmark = [*NEEDS_NODE, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

TOOL = f"{NAME}__send_greeting"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh, node_plugin: NodePlugin) -> AsyncIterator[Gateway]:
    """A gateway that offers the Node plugin's tool."""
    async with federating(auth_mesh) as running:

        async def offered() -> bool | None:
            return True if running.plugin_tools.find(NAME, "send_greeting") else None

        await eventually(offered, timeout_seconds=30, what="the Node plugin's tool offered")
        yield running


async def test_a_node_plugins_rpc_is_a_tool_that_acts_for_its_caller(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    rules = [users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=f"{NAME}/*")]
    created = await auth_mesh.create_machine_user(
        f"greeter-{uuid.uuid4().hex[:8]}", permissions=users_pb2.Permissions(rules=rules)
    )
    actor = created.machine_user.machine_user_id
    url = f"http://{gateway.http_address}/mcp"
    async with connected(url, created.token, MODERN) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = await client.call_tool(TOOL, {"name": "Ada"})

    tool = listed[TOOL]
    # The comments came from the .proto over the plugin's server reflection.
    assert tool.description == (
        "Greets one person on behalf of the caller and tells the mesh: answers once\n"
        'JetStream has acknowledged the "greeter.greeted" event.'
    )
    assert tool.annotations is not None
    assert tool.annotations.destructive_hint is False
    assert tool.input_schema["properties"] == {
        "name": {"type": "string", "description": "Who to greet."}
    }
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["message"] == "Hello, Ada"
    event_id = result.structured_content["eventId"]
    entry = await _audited(auth_mesh, event_id)
    assert entry["action"] == "greeter.greeted"
    assert entry["actor"]["id"] == actor, "the plugin acted for the tool's caller"


async def _audited(mesh: Mesh, entry_id: str) -> dict[str, Any]:
    """The audit entry ``entry_id`` (an event's id), once the audit plugin recorded it."""
    admin = mesh.bearer(mesh.admin_token)

    async def found() -> dict[str, Any] | None:
        response = await mesh.http.get(f"/v1/audit/entries/{entry_id}", headers=admin)
        return response.json()["entry"] if response.status_code == 200 else None

    entry: dict[str, Any] = await eventually(found, timeout_seconds=30, what="the greeting")
    return entry
