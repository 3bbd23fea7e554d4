"""The real grpcurl binary lists, describes and calls a plugin built with the toolkit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from meshkit.config import MeshConfig
from meshkit.server import PluginServer
from plugmesh.users.v1 import users_pb2
from tests.grpcurl import grpcurl
from tests.support.unimplemented import unimplemented


@pytest.fixture
async def users_plugin() -> AsyncIterator[PluginServer]:
    service = users_pb2.DESCRIPTOR.services_by_name["UserService"]
    server = PluginServer(
        "users",
        [unimplemented(service)],
        address="127.0.0.1:0",
        config=MeshConfig.from_env({}),
        register=False,
    )
    await server.start()
    yield server
    await server.stop(0)


async def test_grpcurl_lists_the_plugin_health_and_reflection(users_plugin: PluginServer) -> None:
    result = await grpcurl(users_plugin.address, "list")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
        "plugmesh.users.v1.UserService",
    ]


async def test_grpcurl_describes_a_method_with_its_http_rule(users_plugin: PluginServer) -> None:
    result = await grpcurl(
        users_plugin.address, "describe", "plugmesh.users.v1.UserService.GetUser"
    )
    assert result.returncode == 0, result.stderr
    assert 'get:"/v1/users/{user_id}"' in result.stdout


async def test_grpcurl_calls_health_check(users_plugin: PluginServer) -> None:
    result = await grpcurl(
        "-d",
        '{"service": "plugmesh.users.v1.UserService"}',
        users_plugin.address,
        "grpc.health.v1.Health/Check",
    )
    assert result.returncode == 0, result.stderr
    assert result.json() == {"status": "SERVING"}


async def test_grpcurl_sees_unimplemented_methods_as_unimplemented(
    users_plugin: PluginServer,
) -> None:
    result = await grpcurl(
        "-d", '{"user_id": "u1"}', users_plugin.address, "plugmesh.users.v1.UserService/GetUser"
    )
    assert result.returncode != 0
    assert "Unimplemented" in result.stderr
