"""The registry's settings and its entry point, ``python -m registry``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import grpc
import pytest

from launcher.natsd import NatsServer
from meshkit.config import ConfigError
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.config import RegistryConfig


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"address": "127.0.0.1:50050", "lease_seconds": 10.0, "registration_secret": None}),
        (
            {"PLUGMESH_DATA_DIR": "/data"},
            {"resolved_database_url": "sqlite:////data/registry.db"},
        ),
        (
            {"PLUGMESH_DATABASE_URL": "postgresql://db/mesh"},
            {"resolved_database_url": "postgresql://db/mesh"},
        ),
        (
            {
                "PLUGMESH_DATABASE_URL": "postgresql://db/mesh",
                "PLUGMESH_REGISTRY_DATABASE_URL": "sqlite:///r.db",
            },
            {"resolved_database_url": "sqlite:///r.db"},
        ),
        (
            {"PLUGMESH_REGISTRY_ADDRESS": "0.0.0.0:6000", "PLUGMESH_REGISTRATION_SECRET": "s"},
            {"address": "0.0.0.0:6000", "registration_secret": "s"},
        ),
        ({"PLUGMESH_REGISTRY_LEASE_SECONDS": "2.5"}, {"lease_seconds": 2.5}),
    ],
    ids=["defaults", "data-dir", "mesh-database", "registry-database", "address-secret", "lease"],
)
def test_config_is_read_from_the_environment(
    env: dict[str, str], expected: dict[str, object]
) -> None:
    config = RegistryConfig.from_env(env)

    assert {name: getattr(config, name) for name in expected} == expected


@pytest.mark.parametrize("lease", ["soon", "0", "-1"], ids=["word", "zero", "negative"])
def test_unusable_lease_is_a_config_error_naming_the_variable(lease: str) -> None:
    with pytest.raises(ConfigError, match="PLUGMESH_REGISTRY_LEASE_SECONDS"):
        RegistryConfig.from_env({"PLUGMESH_REGISTRY_LEASE_SECONDS": lease})


@pytest.mark.parametrize("nats_running", [True, False], ids=["nats", "nats-away"])
async def test_entry_point_serves_until_sigterm_with_or_without_nats(
    tmp_path: Path, nats_running: bool, nats_server: NatsServer
) -> None:
    # Without NATS the registry serves all the same; its events wait in its outbox.
    if nats_running:
        nats_url = nats_server.url
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            nats_url = f"nats://127.0.0.1:{probe.getsockname()[1]}"
    env = {
        **os.environ,
        "PLUGMESH_REGISTRY_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_DATA_DIR": str(tmp_path),
        "PLUGMESH_LOG_LEVEL": "INFO",
        "PLUGMESH_NATS_URL": nats_url,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "registry", env=env, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        address = ""
        async with asyncio.timeout(20):
            while not address:
                line = await process.stderr.readline()
                assert line, "the registry exited before serving"
                entry = json.loads(line)
                if entry.get("message") == "registry serving":
                    address = entry["address"]
        async with grpc.aio.insecure_channel(address) as channel:
            listed = await registry_pb2_grpc.RegistryServiceStub(channel).ListServices(
                registry_pb2.ListServicesRequest(), timeout=5
            )
        assert [s.name for s in listed.services] == ["registry"]
        assert (tmp_path / "registry.db").exists()

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            await process.stderr.read()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_package_exports_exactly_its_public_api() -> None:
    import registry

    assert sorted(registry.__all__) == registry.__all__
    assert all(hasattr(registry, name) for name in registry.__all__)
