"""Fixtures every test directory may use: the session's PostgreSQL server, a nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from launcher.natsd import NatsServer
from tests.postgres import postgres_server, server_binaries


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The URL of a PostgreSQL superuser: ``PLUGMESH_TEST_POSTGRES_URL`` when set, else a
    server started for this session (on first use) and stopped at its end."""
    configured = os.environ.get("PLUGMESH_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    with postgres_server(server_binaries()) as url:
        yield url


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A real nats-server with JetStream on a free port, its store and log in tmp_path."""
    async with NatsServer(tmp_path / "jetstream", log_path=tmp_path / "nats.log") as server:
        yield server
