"""The real grpcurl binary lists, describes and calls the registry, with a plugin registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshkit.config import MeshConfig
from meshkit.server import PluginServer
from plugmesh.users.v1 import users_pb2
from registry import RegistryConfig, RegistryServer
from tests.grpcurl import grpcurl
from tests.support.unimplemented import unimplemented
from tests.support.waiting import eventually


@pytest.fixture
async def registry_and_plugin(tmp_path: Path) -> AsyncIterator[tuple[RegistryServer, PluginServer]]:
    """A registry and a users plugin registered with it, both on free ports."""
    registry = RegistryServer(RegistryConfig(address="127.0.0.1:0", data_dir=tmp_path))
    await registry.start()
    config = MeshConfig.from_env({"PLUGMESH_REGISTRY_ADDRESS": registry.address})
    users = PluginServer(
        "users",
        [unimplemented(users_pb2.DESCRIPTOR.services_by_name["UserService"])],
        address="127.0.0.1:0",
        config=config,
    )
    await users.start()
    try:
        assert users.registrar is not None
        await users.registrar.registered.wait()
        yield registry, users
    finally:
        await users.stop(0)
        await registry.close()


async def test_grpcurl_lists_the_registry_health_and_reflection(
    registry_and_plugin: tuple[RegistryServer, PluginServer],
) -> None:
    registry, _ = registry_and_plugin
    result = await grpcurl(registry.address, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "plugmesh.registry.v1.RegistryService",
    ]


async def test_grpcurl_describes_the_registry_service(
    registry_and_plugin: tuple[RegistryServer, PluginServer],
) -> None:
    registry, _ = registry_and_plugin
    result = await grpcurl(registry.address, "describe", "plugmesh.registry.v1.RegistryService")
    assert result.returncode == 0, result.stderr
    assert "rpc ListServices" in result.stdout
    assert 'get:"/v1/services"' in result.stdout


async def test_grpcurl_lists_services_with_the_registered_plugin_serving(
    registry_and_plugin: tuple[RegistryServer, PluginServer],
) -> None:
    registry, users = registry_and_plugin

    async def users_serving() -> dict[str, object] | None:
        result = await grpcurl(
            "-d",
            '{"service": "users"}',
            registry.address,
            "plugmesh.registry.v1.RegistryService/GetService",
        )
        assert result.returncode == 0, result.stderr
        service: dict[str, object] = result.json()["service"]
        return service if service.get("health") == "HEALTH_STATUS_SERVING" else None

    service = await eventually(users_serving, what="users SERVING through grpcurl")
    assert service["grpc_services"] == ["plugmesh.users.v1.UserService"]
    listed = await grpcurl(registry.address, "plugmesh.registry.v1.RegistryService/ListServices")
    assert listed.returncode == 0, listed.stderr
    names = [s["name"] for s in listed.json()["services"]]
    assert names == ["registry", "users"]
    instances = listed.json()["services"][1]["instances"]
    assert [i["address"] for i in instances] == [users.address]


async def test_grpcurl_sees_not_found_for_an_unknown_service(
    registry_and_plugin: tuple[RegistryServer, PluginServer],
) -> None:
    registry, _ = registry_and_plugin
    result = await grpcurl(
        "-d",
        '{"service": "nope"}',
        registry.address,
        "plugmesh.registry.v1.RegistryService/GetService",
    )
    assert result.returncode != 0
    assert "NotFound" in result.stderr
