"""The admin API of the upstream MCP servers (``/v1/mcp/servers``) as the MCP tests use it:
an admin whose permissions carry the admin flag (so every tool is theirs to call), servers
added over HTTP, and their views read until they reach a state."""

from __future__ import annotations

import sys
from typing import Any

from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER
from tests.support.waiting import eventually

SERVERS = "/v1/mcp/servers"
READY = "SERVER_STATE_READY"
FAILING = "SERVER_STATE_FAILING"


async def servers_admin(mesh: Mesh, name: str) -> str:
    """The token of a new admin machine user named ``name`` who may call every MCP tool,
    once the gateway routes the admin API."""
    created = await mesh.create_machine_user(
        name, admin=True, permissions=users_pb2.Permissions(admin=True)
    )

    async def routed() -> bool | None:
        service = mesh.gateway.catalog.service("mcp-servers")
        return True if service and service.serving and service.schema else None

    await eventually(routed, timeout_seconds=20, what="mcp-servers routed")
    return created.token


def our_upstream(name: str, *args: str, **fields: Any) -> dict[str, Any]:
    """A server body: our test MCP server over stdio, run as ``python -m <SERVER> stdio``
    unless ``args`` says otherwise."""
    return {
        "name": name,
        "stdio": {
            "command": sys.executable,
            "args": list(args or ("-m", SERVER, "stdio")),
            "cwd": str(ROOT),
        },
        **fields,
    }


async def add_server(mesh: Mesh, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """Add the server ``body`` describes; returns its view."""
    response = await mesh.http.post(SERVERS, json=body, headers=mesh.bearer(token))
    assert response.status_code == 200, response.text
    server: dict[str, Any] = response.json()["server"]
    return server


async def server_view(mesh: Mesh, token: str, name: str) -> dict[str, Any]:
    """``GET /v1/mcp/servers/<name>``."""
    response = await mesh.http.get(f"{SERVERS}/{name}", headers=mesh.bearer(token))
    assert response.status_code == 200, response.text
    server: dict[str, Any] = response.json()["server"]
    return server


async def reached(
    mesh: Mesh, token: str, name: str, state: str, *, timeout_seconds: float = 40
) -> dict[str, Any]:
    """The server's view once its status says ``state``."""

    async def check() -> dict[str, Any] | None:
        server = await server_view(mesh, token, name)
        return server if server.get("status", {}).get("state") == state else None

    return await eventually(
        check, timeout_seconds=timeout_seconds, interval_seconds=0.1, what=f"{name} {state}"
    )
