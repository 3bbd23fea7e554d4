"""A gateway of the auth mesh federating our test MCP server over stdio as ``up``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator

from gateway.app import Gateway
from gateway.mcpfront import McpSettings
from gateway.mcpfront.call_events import CallArguments
from gateway.mcpfront.spec import StdioTransport, UpstreamSpec, inherited_environment
from gateway.mcpfront.upstream import State
from tests.gateway.auth.mesh import Mesh
from tests.gateway.conftest import FAST
from tests.gateway.mcp.conftest import mcp_config
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER
from tests.support.waiting import eventually

#: The name of the federated server.
UP = "up"


@contextlib.asynccontextmanager
async def federating(
    mesh: Mesh,
    arguments: CallArguments = CallArguments.KEYS,
    *,
    required_hooks: frozenset[str] = frozenset(),
) -> AsyncIterator[Gateway]:
    """A gateway in ``mesh`` serving our test server over stdio as ``up`` (calls time out
    after 2 s), recording arguments as ``arguments`` says and requiring the hooks
    ``required_hooks``; once READY and linked."""
    spec = UpstreamSpec(
        name=UP,
        transport=StdioTransport(
            command=sys.executable, args=("-m", SERVER, "stdio"), cwd=str(ROOT)
        ),
        call_timeout_seconds=2.0,
    )
    settings = McpSettings(
        servers=(spec,),
        child_environment=inherited_environment(os.environ),
        call_arguments=arguments,
        required_hooks=required_hooks,
    )
    gateway = Gateway(mcp_config(mesh, settings), register=False, registry_backoff=FAST)
    await gateway.start()
    try:
        await ready(gateway)
        yield gateway
    finally:
        await gateway.stop()


async def ready(gateway: Gateway) -> None:
    """Wait until the upstream is READY and the gateway linked to the mesh."""

    async def linked() -> bool | None:
        upstream = gateway.mcp_upstreams.get(UP)
        services = [gateway.catalog.service(name) for name in ("machine-users", "users")]
        if upstream is None or upstream.state is not State.READY:
            return None
        if not gateway.auth.events.live or not all(s and s.serving for s in services):
            return None
        return True

    await eventually(linked, timeout_seconds=40, what="the upstream READY, the mesh linked")
