"""The test MCP server (tests/gateway/mcp_upstreams/upstream.py) added to a running auth
mesh as the upstream ``web``, READY: what the console's tests decide permissions on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp_upstreams.conftest import HttpServer
from tests.support.waiting import eventually

__all__ = ["web_upstream"]


@asynccontextmanager
async def web_upstream(mesh: Mesh) -> AsyncIterator[None]:
    """Serve the test MCP server as ``web`` through ``mesh``'s gateway until the end."""
    upstream = HttpServer()
    await upstream.start()
    try:
        admin = mesh.bearer(mesh.admin_token)

        async def routed() -> bool | None:
            service = mesh.gateway.catalog.service("mcp-servers")
            return True if service and service.serving and service.schema else None

        await eventually(routed, timeout_seconds=20, what="mcp-servers routed")
        added = await mesh.http.post(
            "/v1/mcp/servers",
            json={"name": "web", "streamableHttp": {"url": upstream.url}},
            headers=admin,
        )
        assert added.status_code == 200, added.text

        async def ready() -> bool | None:
            server = (await mesh.http.get("/v1/mcp/servers/web", headers=admin)).json()
            state = server["server"]["status"]["state"]
            return True if state == "SERVER_STATE_READY" else None

        await eventually(ready, timeout_seconds=30, what="web READY")
        yield
    finally:
        await upstream.stop()
