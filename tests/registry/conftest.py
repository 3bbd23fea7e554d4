"""Fixtures: registries and fake plugin instances on free ports, SQLite in tmp_path
(``database_url``, for SQLite and PostgreSQL, is in tests/conftest.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2

from meshkit.registration import Backoff
from plugmesh.registry.v1 import registry_pb2_grpc
from registry.app import RegistryServer
from registry.config import RegistryConfig
from tests.support.registry import FakePlugin, StartPlugin, StartRegistry

# Reconnect quickly so that tests of recovery do not wait for a production backoff.
FAST_BACKOFF = Backoff(initial_seconds=0.05, maximum_seconds=0.2)


@pytest.fixture
def registry_config(tmp_path: Path) -> RegistryConfig:
    """Settings for a registry on a free port with its database in ``tmp_path``."""
    return RegistryConfig(
        address="127.0.0.1:0",
        data_dir=tmp_path,
        shutdown_grace_seconds=0.5,
        reflection_timeout_seconds=2.0,
    )


@pytest.fixture
async def start_registry(registry_config: RegistryConfig) -> AsyncIterator[StartRegistry]:
    """Factory for registries; ``overrides`` replace fields of the default config."""
    servers: list[RegistryServer] = []

    async def start(**overrides: Any) -> RegistryServer:
        config = dataclasses.replace(registry_config, **overrides)
        server = RegistryServer(config, health_backoff=FAST_BACKOFF)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in reversed(servers):
        await server.close()


@pytest.fixture
async def registry(start_registry: StartRegistry) -> RegistryServer:
    """A registry with default settings."""
    return await start_registry()


@pytest.fixture
async def stub(
    registry: RegistryServer,
) -> AsyncIterator[registry_pb2_grpc.RegistryServiceAsyncStub]:
    """A client of ``registry``."""
    async with grpc.aio.insecure_channel(registry.address) as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


@pytest.fixture
async def start_plugin() -> AsyncIterator[StartPlugin]:
    """Factory for fake plugin instances."""
    plugins: list[FakePlugin] = []

    async def start(
        files: Sequence[descriptor_pb2.FileDescriptorProto],
        services: Sequence[str],
        *,
        reflection: bool = True,
    ) -> FakePlugin:
        plugin = FakePlugin(files, services, reflection=reflection)
        plugins.append(plugin)
        await plugin.start()
        return plugin

    yield start
    for plugin in plugins:
        await plugin.stop()
