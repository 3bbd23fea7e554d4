"""Fixtures: a real registry, echo plugins and the gateway's parts, all on free ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.catalog import Catalog
from gateway.config import GatewayConfig
from gateway.upstream import Upstreams
from meshkit.config import MeshConfig
from meshkit.registration import Backoff
from registry.app import RegistryServer
from tests.gateway.echo import EchoPlugin
from tests.registry import conftest as _registry_fixtures
from tests.support.waiting import eventually

# The registry tests' fixtures: a registry on a free port, fake plugins.
registry_config = _registry_fixtures.registry_config
start_registry = _registry_fixtures.start_registry
registry = _registry_fixtures.registry
start_plugin = _registry_fixtures.start_plugin

FAST = Backoff(initial_seconds=0.05, maximum_seconds=0.2)

StartEcho = Callable[..., Awaitable[EchoPlugin]]


@pytest.fixture
async def start_echo(registry: RegistryServer) -> AsyncIterator[StartEcho]:
    """Factory for echo instances registered with ``registry``."""
    plugins: list[EchoPlugin] = []

    async def start(name: str = "echo", registry_address: str = "") -> EchoPlugin:
        plugin = EchoPlugin(registry_address or registry.address, name=name)
        plugins.append(plugin)
        await plugin.start()
        return plugin

    yield start
    for plugin in plugins:
        await plugin.stop()


@pytest.fixture
async def catalog(registry: RegistryServer) -> AsyncIterator[Catalog]:
    """A catalog following ``registry``, synced."""
    catalog = Catalog(registry.address, backoff=FAST)
    await catalog.start()
    assert await catalog.wait_ready(timeout_seconds=5)
    yield catalog
    await catalog.close()


@pytest.fixture
async def upstreams(catalog: Catalog) -> AsyncIterator[Upstreams]:
    """Upstreams over ``catalog``."""
    upstreams = Upstreams(catalog, close_grace_seconds=0.2)
    await upstreams.start()
    yield upstreams
    await upstreams.close()


async def serving_instances(catalog: Catalog, service: str, count: int) -> None:
    """Wait until ``service`` has ``count`` SERVING instances in ``catalog``."""

    async def check() -> bool | None:
        found = catalog.service(service)
        return True if found and len(found.serving_instances) == count else None

    await eventually(check, what=f"{count} serving instances of {service}")


@pytest.fixture
async def gateway(registry: RegistryServer, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The whole gateway on free ports, registered with ``registry`` and synced."""
    mesh = MeshConfig.from_env(
        {
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_REGISTRY_ADDRESS": registry.address,
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        }
    )
    config = GatewayConfig(
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        mcp_servers_address="127.0.0.1:0",
        default_deadline_seconds=5.0,
        mesh=mesh,
    )
    gateway = Gateway(config, registry_backoff=FAST)
    await gateway.start()
    assert await gateway.catalog.wait_ready(timeout_seconds=5)
    yield gateway
    await gateway.stop()
