"""Fixtures: the conformance upstream (:mod:`tests.gateway.mcp_conformance.upstream`) in
its own process, and a gateway of the auth mesh serving it at ``/mcp/s/conformance``,
reached through a :class:`BearerProxy` with an admin machine user's token.

Tests using them run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from gateway.app import Gateway
from gateway.mcpfront import McpSettings
from gateway.mcpfront.spec import HttpTransport, UpstreamSpec
from gateway.mcpfront.upstream import State
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import Mesh
from tests.gateway.conftest import FAST
from tests.gateway.mcp.conftest import mcp_config
from tests.gateway.mcp_conformance.bearer_proxy import BearerProxy
from tests.gateway.mcp_upstreams.conftest import HttpServer
from tests.support.waiting import eventually

auth_mesh = _auth_fixtures.auth_mesh

#: The upstream's name on the gateway.
NAME = "conformance"
UPSTREAM = "tests.gateway.mcp_conformance.upstream"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[HttpServer]:
    """The conformance upstream serving Streamable HTTP on a free port."""
    server = HttpServer(module=UPSTREAM)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway_url(auth_mesh: Mesh, upstream: HttpServer) -> AsyncIterator[str]:
    """``/mcp/s/conformance`` of a gateway serving the upstream, as the suite reaches it:
    through a proxy adding an admin machine user's token."""
    spec = UpstreamSpec(name=NAME, transport=HttpTransport(upstream.url))
    gateway = Gateway(
        mcp_config(auth_mesh, McpSettings(servers=(spec,))), register=False, registry_backoff=FAST
    )
    admin = await auth_mesh.create_machine_user(
        "conformance", permissions=users_pb2.Permissions(admin=True)
    )
    await gateway.start()
    try:

        async def ready() -> bool | None:
            served = gateway.mcp_upstreams.get(NAME)
            services = [gateway.catalog.service(name) for name in ("machine-users", "users")]
            if served is None or served.state is not State.READY:
                return None
            if not gateway.auth.events.live or not all(s and s.serving for s in services):
                return None
            return True

        await eventually(ready, timeout_seconds=40, what="the upstream READY, the mesh linked")
        async with BearerProxy(gateway.http_address, admin.token) as proxy:
            yield f"http://{proxy.address}/mcp/s/{NAME}"
    finally:
        await gateway.stop()
