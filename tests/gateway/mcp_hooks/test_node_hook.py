"""A hook plugin in another language: the Node test plugin, run with ``--hook``, hooks
into the gateway's tool calls from the same protos (tests/node/hook.js): it changes a
call's arguments, redacts its result and hides a tool, and the audit log records it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.app import Gateway
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp_hooks.calls import call, caller, decisions, ending, text
from tests.gateway.node import NAME, NEEDS_NODE, NodePlugin, start_node
from tests.support.waiting import eventually

pytestmark = [*NEEDS_NODE, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node_hook(
    auth_mesh: Mesh, gateway: Gateway, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[NodePlugin]:
    """The Node plugin with its hook, known to ``gateway``."""
    log = Path(tmp_path_factory.mktemp("node")) / "node.log"
    plugin = await start_node(auth_mesh.registry.address, SECRET, log, hook=True)

    async def known() -> bool | None:
        service = gateway.catalog.service(NAME)
        hooks = gateway.mcp_servers.hook_modes.views()
        declared = any(h.name == NAME and h.HasField("declared") for h in hooks)
        return True if declared and service is not None and service.serving else None

    try:
        await eventually(known, timeout_seconds=30, what="the Node hook known")
        yield plugin
    finally:
        await plugin.stop()


async def test_a_node_hook_changes_the_arguments_and_redacts_the_result(
    auth_mesh: Mesh, gateway: Gateway, node_hook: NodePlugin
) -> None:
    actor, token = await caller(auth_mesh)

    result = await call(gateway, token, "echo", {"text": "a classified note"})

    assert text(result) == "echo:a [redacted] note [node]"
    assert decisions(await ending(auth_mesh, actor)) == [
        (NAME, "PRE_TOOL_CALL", "MODIFY", True),
        (NAME, "POST_TOOL_CALL", "REDACT", True),
    ]


async def test_a_node_hook_hides_a_tool_from_the_list(
    auth_mesh: Mesh, gateway: Gateway, node_hook: NodePlugin
) -> None:
    _, token = await caller(auth_mesh)
    async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
        listed = {tool.name for tool in (await client.list_tools()).tools}

    assert "up__echo" in listed
    assert "up__add" not in listed
