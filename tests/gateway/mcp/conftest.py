"""Fixtures: the authentication tests' whole mesh (``auth_mesh``: NATS, registry,
machine-users, users, audit, a gateway), and beside it gateways whose MCP front serves the
test toolbox (:mod:`tests.gateway.mcp.workbench`), with a small page and a JWT issuer.

Tests using them run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from gateway.app import Gateway
from gateway.auth import AuthSettings
from gateway.config import GatewayConfig
from gateway.http import HttpSettings
from gateway.mcpfront import McpSettings
from meshkit.config import MeshConfig
from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import CACHE_TTL_SECONDS, JWT_SECRET, SECRET, Mesh
from tests.gateway.conftest import FAST
from tests.gateway.mcp.workbench import Workbench
from tests.support.waiting import eventually

auth_mesh = _auth_fixtures.auth_mesh

#: The JWT issuer the MCP gateways require and name as authorization server.
ISSUER = "https://login.plugmesh.test"
#: Small, so that listings take several pages.
PAGE_SIZE = 4


@dataclass
class Front:
    """A gateway serving MCP from ``workbench``."""

    gateway: Gateway
    workbench: Workbench

    @property
    def base(self) -> str:
        """``http://host:port`` of the gateway's HTTP side."""
        return f"http://{self.gateway.http_address}"

    @property
    def url(self) -> str:
        """The ``/mcp`` endpoint."""
        return self.base + "/mcp"


def mcp_config(
    mesh: Mesh, settings: McpSettings | None = None, http: HttpSettings | None = None
) -> GatewayConfig:
    """A gateway's settings in ``mesh``: free ports, its NATS and registry, JWTs of
    :data:`ISSUER`."""
    env = {
        "PLUGMESH_DATA_DIR": str(mesh.data_dir),
        "PLUGMESH_NATS_URL": mesh.nats.url,
        "PLUGMESH_REGISTRY_ADDRESS": mesh.registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
    }
    return GatewayConfig(
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        mcp_servers_address="127.0.0.1:0",
        default_deadline_seconds=5.0,
        auth=AuthSettings(
            jwt_hs256_secret=JWT_SECRET, jwt_issuer=ISSUER, cache_ttl_seconds=CACHE_TTL_SECONDS
        ),
        mcp=settings or McpSettings(page_size=PAGE_SIZE),
        http=http or HttpSettings(),
        mesh=MeshConfig.from_env(env),
    )


@contextlib.asynccontextmanager
async def running_front(
    mesh: Mesh,
    *,
    replica: str = "r1",
    settings: McpSettings | None = None,
    http: HttpSettings | None = None,
) -> AsyncIterator[Front]:
    """A gateway in ``mesh`` serving MCP from a fresh :class:`Workbench`, once it can
    check machine tokens and publish events; stopped after."""
    workbench = Workbench(replica=replica)
    gateway = Gateway(
        mcp_config(mesh, settings, http), register=False, registry_backoff=FAST, toolbox=workbench
    )
    await gateway.start()
    try:

        async def ready() -> bool | None:
            services = [gateway.catalog.service(name) for name in ("machine-users", "users")]
            if not gateway.auth.events.live or not all(s and s.serving for s in services):
                return None
            return True

        await eventually(ready, timeout_seconds=20, what="the MCP gateway linked to the mesh")
        yield Front(gateway, workbench)
    finally:
        await gateway.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def front(auth_mesh: Mesh) -> AsyncIterator[Front]:
    """A gateway serving MCP from a :class:`Workbench`, shared by a module's tests."""
    async with running_front(auth_mesh) as running:
        yield running
