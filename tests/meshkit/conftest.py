from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, Servicer
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.meshkit.fake_registry import FakeRegistry


@pytest.fixture
async def fake_registry() -> AsyncIterator[tuple[FakeRegistry, PluginServer]]:
    """A fake registry served by the toolkit itself, on a free port."""
    registry = FakeRegistry()
    server = PluginServer(
        "registry",
        [
            Servicer.of(
                registry_pb2,
                "RegistryService",
                registry_pb2_grpc.add_RegistryServiceServicer_to_server,
                registry,
            )
        ],
        address="127.0.0.1:0",
        config=MeshConfig.from_env({}),
        register=False,
    )
    await server.start()
    yield registry, server
    await server.stop(0)


def config_for(registry_address: str, secret: str | None = None) -> MeshConfig:
    """Mesh settings pointing at a test registry."""
    env = {"PLUGMESH_REGISTRY_ADDRESS": registry_address, "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1"}
    if secret:
        env["PLUGMESH_REGISTRATION_SECRET"] = secret
    return MeshConfig.from_env(env)
