"""The probes of deploy/k8s, run against real processes while the registry is away.

A liveness probe that asks about another process restarts every pod when that process is
down: the probes of each Deployment are run as the kubelet would run them, against the
process it deploys, with the registry unreachable. Startup and liveness must pass; the
gateway's readiness must not until the registry is back.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from launcher.processes import process_named
from meshkit.config import MeshConfig, address_variable
from meshkit.registration import Backoff
from registry.app import RegistryServer
from registry.config import RegistryConfig
from services.secretsguard.app import build as build_secrets_guard
from services.secretsguard.config import SecretsGuardConfig
from tests.deploy.kustomize import render
from tests.deploy.probes import probe_passes
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(60)

FAST = Backoff(initial_seconds=0.05, maximum_seconds=0.2)
OBJECTS = render()


def container(deployment: str) -> dict[str, Any]:
    found = next(
        o for o in OBJECTS if o["kind"] == "Deployment" and o["metadata"]["name"] == deployment
    )
    (only,) = found["spec"]["template"]["spec"]["containers"]
    result: dict[str, Any] = only
    return result


def free_address() -> str:
    """A loopback address nothing listens on (yet)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def registry_address() -> str:
    return free_address()


def mesh(tmp_path: Path, registry_address: str) -> MeshConfig:
    return MeshConfig.from_env(
        {
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_REGISTRY_ADDRESS": registry_address,
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        }
    )


@pytest.fixture
async def gateway(tmp_path: Path, registry_address: str) -> AsyncIterator[Gateway]:
    config = GatewayConfig(
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        mcp_servers_address="127.0.0.1:0",
        mesh=mesh(tmp_path, registry_address),
    )
    gateway = Gateway(config, registry_backoff=FAST)
    await gateway.start()
    yield gateway
    await gateway.stop()


async def test_the_gateway_stays_alive_without_the_registry_and_is_ready_once_it_is_back(
    gateway: Gateway, registry_address: str, tmp_path: Path
) -> None:
    spec = container("gateway")
    addresses = {
        process_named("gateway").grpc_address_var: gateway.grpc_address,
        address_variable("gateway-http"): gateway.http_address,
    }
    for kind in ("startupProbe", "livenessProbe"):
        assert await probe_passes(spec, spec[kind], addresses), f"{kind} fails"
    assert not await probe_passes(spec, spec["readinessProbe"], addresses)

    registry = RegistryServer(
        RegistryConfig(address=registry_address, data_dir=tmp_path, shutdown_grace_seconds=0.5)
    )
    await registry.start()
    try:
        await until(
            lambda: probe_passes(spec, spec["readinessProbe"], addresses), timeout_seconds=10
        )
        assert await probe_passes(spec, spec["livenessProbe"], addresses)
    finally:
        await registry.close()


async def test_a_plugin_stays_alive_and_started_without_the_registry(
    tmp_path: Path, registry_address: str
) -> None:
    spec = container("secrets-guard")
    variable = address_variable("secrets-guard")
    config = SecretsGuardConfig.from_env(
        {
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_REGISTRY_ADDRESS": registry_address,
            variable: "127.0.0.1:0",
        }
    )
    server = build_secrets_guard(config)
    await server.start()
    try:
        addresses = {variable: server.address}
        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert await probe_passes(spec, spec[kind], addresses), f"{kind} fails"
    finally:
        await server.stop()
