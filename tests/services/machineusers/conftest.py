"""Fixtures: a real nats-server, the machine-users plugin on a free port with a clock the
test moves, and a client that signs identities.

Every test that uses ``running`` runs on SQLite and on PostgreSQL (``database_url``, see
tests/support/databases.py), in a database of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from launcher.natsd import NatsServer
from meshkit.identity import signing_key
from plugmesh.machineusers.v1 import machineusers_pb2_grpc
from services.machineusers.app import MachineUsersPlugin, build
from services.machineusers.config import MachineUsersConfig
from tests.services.machineusers.support import SECRET, Api, FakeClock


def plugin_env(data_dir: Path, nats_url: str, **extra: str) -> dict[str, str]:
    """The plugin's environment in a test: free port, its own data dir, fast retries."""
    return {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_MACHINE_USERS_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1",
        "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS": "50",
        "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS": "100",
        **extra,
    }


@dataclass
class Running:
    """A running plugin, its clock and a client."""

    plugin: MachineUsersPlugin
    clock: FakeClock
    api: Api


@contextlib.asynccontextmanager
async def running_plugin(
    data_dir: Path,
    nats_url: str,
    *,
    registry_address: str | None = None,
    clock: FakeClock | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[Running]:
    """The plugin, started (registered only when given a registry), and a client;
    ``env`` adds to the test environment."""
    env = plugin_env(data_dir, nats_url, **(env or {}))
    if registry_address is not None:
        env["PLUGMESH_REGISTRY_ADDRESS"] = registry_address
    clock = clock or FakeClock()
    wired = build(
        MachineUsersConfig.from_env(env), register=registry_address is not None, clock=clock
    )
    await wired.server.start()
    key = signing_key(SECRET)
    assert key is not None
    try:
        async with grpc.aio.insecure_channel(wired.server.address) as channel:
            stub = machineusers_pb2_grpc.MachineUserServiceStub(channel)
            yield Running(wired, clock, Api(stub, key))
    finally:
        await wired.server.stop(0)


@pytest.fixture
async def running(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> AsyncIterator[Running]:
    """The plugin, its data dir in ``tmp_path / "data"``, on ``database_url``, with a fake
    clock."""
    env = {"PLUGMESH_DATABASE_URL": database_url}
    async with running_plugin(tmp_path / "data", nats_server.url, env=env) as wired:
        yield wired


@pytest.fixture
def api(running: Running) -> Api:
    """A client of ``running``."""
    return running.api
