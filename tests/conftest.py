"""Fixtures every test directory may use: the session's PostgreSQL server, an empty
database on each backend, a nats-server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from launcher.natsd import NatsServer
from tests.postgres import postgres_server, server_binaries
from tests.support.databases import BACKENDS, empty_database


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


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in a folder yet to be made under ``tmp_path``, then
    a new database on the session's PostgreSQL (the test runs once on each)."""
    async with empty_database(request.param, tmp_path, request) as url:
        yield url


@pytest.fixture
async def nats_server(tmp_path: Path) -> AsyncIterator[NatsServer]:
    """A real nats-server with JetStream on a free port, its store and log in tmp_path."""
    async with NatsServer(tmp_path / "jetstream", log_path=tmp_path / "nats.log") as server:
        yield server
