"""A whole mesh for the HTTP tests: a registry, the transcoding plugin, the gateway's
catalog and upstreams, the HTTP app on a real uvicorn server, and an HTTP client; every
server on a free port.

:func:`running_mesh` is shared by module-scoped fixtures (one mesh for a whole table of
cases) and by tests that need a mesh of their own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from gateway.catalog import Catalog
from gateway.http import GatewayApp, HttpServer, HttpSettings, build_app
from gateway.model import Method
from gateway.upstream import Upstreams
from registry.app import RegistryServer
from registry.config import RegistryConfig
from tests.gateway.conftest import FAST
from tests.gateway.http.plugin import TranscodingPlugin
from tests.registry.conftest import FAST_BACKOFF
from tests.support.waiting import eventually

#: Small enough to test 413 cheaply.
BODY_LIMIT_BYTES = 16 * 1024
SETTINGS = HttpSettings(
    body_limit_bytes=BODY_LIMIT_BYTES, default_timeout_seconds=5.0, max_timeout_seconds=10.0
)


@dataclass
class Mesh:
    """Everything a test may poke at."""

    registry: RegistryServer
    plugin: TranscodingPlugin
    catalog: Catalog
    upstreams: Upstreams
    app: GatewayApp[Method]
    server: HttpServer
    client: httpx.AsyncClient

    @property
    def url(self) -> str:
        """The gateway's base URL."""
        return f"http://{self.server.address}"


async def routed(app: GatewayApp[Method], label: str, *, present: bool = True) -> None:
    """Wait until the route ``label`` is (or is no longer) in ``app``'s table."""

    async def check() -> bool | None:
        labels = {route.label for route in app.routes.routes}
        return True if (label in labels) == present else None

    await eventually(check, what=f"route {label} {'present' if present else 'gone'}")


async def serving(catalog: Catalog, service: str) -> None:
    """Wait until ``service`` has a SERVING instance in ``catalog``."""

    async def check() -> bool | None:
        found = catalog.service(service)
        return True if found is not None and found.serving else None

    await eventually(check, what=f"a serving instance of {service}")


@contextlib.asynccontextmanager
async def running_mesh(data_dir: Path, settings: HttpSettings = SETTINGS) -> AsyncIterator[Mesh]:
    """Start registry, plugin, catalog, upstreams and the HTTP server; stop them after."""
    async with contextlib.AsyncExitStack() as stack:
        registry = RegistryServer(
            RegistryConfig(
                address="127.0.0.1:0",
                data_dir=data_dir,
                shutdown_grace_seconds=0.2,
                reflection_timeout_seconds=2.0,
            ),
            health_backoff=FAST_BACKOFF,
        )
        await registry.start()
        stack.push_async_callback(registry.close)
        plugin = TranscodingPlugin(registry.address)
        await plugin.start()
        stack.push_async_callback(plugin.stop)
        catalog = Catalog(registry.address, backoff=FAST)
        await catalog.start()
        stack.push_async_callback(catalog.close)
        upstreams = Upstreams(catalog, close_grace_seconds=0.2)
        await upstreams.start()
        stack.push_async_callback(upstreams.close)
        app = build_app(catalog, upstreams, settings)
        stack.callback(app.close)
        server = HttpServer(app, "127.0.0.1:0", shutdown_grace_seconds=0.2)
        await server.start()
        stack.push_async_callback(server.stop)
        client = httpx.AsyncClient(base_url=f"http://{server.address}", timeout=10.0)
        stack.push_async_callback(client.aclose)
        await routed(app, "GET /v1/things/{id}")
        await serving(catalog, "transcoding")
        yield Mesh(registry, plugin, catalog, upstreams, app, server, client)
