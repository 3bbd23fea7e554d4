"""Fixtures: a real nats-server, the users plugin on a free port, and a client that calls
it with signed identities.

``plugin``/``api`` are fresh per test; ``shared_api`` is one plugin per module and
backend, for tables of many cases that each make their own users (their tests run in the module's
event loop: mark them ``pytest.mark.asyncio(loop_scope="module")``).

Every test that uses ``plugin`` runs on SQLite and on PostgreSQL (``database_url``, see
tests/support/databases.py), in a database of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client

from launcher.natsd import NatsServer
from meshkit.identity import signing_key
from plugmesh.users.v1 import users_pb2_grpc
from services.users.app import UsersPlugin, build
from services.users.config import UsersConfig
from tests.services.users.support import SECRET, Api
from tests.support.databases import BACKENDS, empty_database


def users_env(data_dir: Path, nats_url: str) -> dict[str, str]:
    """The plugin's environment in a test: free port, its own data dir, fast retries."""
    return {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_USERS_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1",
        "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS": "50",
        "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS": "100",
    }


@contextlib.asynccontextmanager
async def running_plugin(
    data_dir: Path,
    nats_url: str,
    *,
    registry_address: str | None = None,
    database_url: str | None = None,
) -> AsyncIterator[UsersPlugin]:
    """The users plugin, started; registered only when given a registry; on SQLite in
    ``data_dir`` unless given a database."""
    env = users_env(data_dir, nats_url)
    if database_url is not None:
        env["PLUGMESH_DATABASE_URL"] = database_url
    if registry_address is not None:
        env["PLUGMESH_REGISTRY_ADDRESS"] = registry_address
    wired = build(UsersConfig.from_env(env), register=registry_address is not None)
    await wired.server.start()
    try:
        yield wired
    finally:
        await wired.server.stop(0)


@contextlib.asynccontextmanager
async def client_of(plugin: UsersPlugin) -> AsyncIterator[Api]:
    """A client of a running plugin."""
    key = signing_key(SECRET)
    assert key is not None
    async with grpc.aio.insecure_channel(plugin.server.address) as channel:
        yield Api(users_pb2_grpc.UserServiceStub(channel), key)


@pytest.fixture
async def plugin(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> AsyncIterator[UsersPlugin]:
    """The users plugin, with its data dir in ``tmp_path / "data"``, on ``database_url``."""
    async with running_plugin(
        tmp_path / "data", nats_server.url, database_url=database_url
    ) as wired:
        yield wired


@pytest.fixture
async def api(plugin: UsersPlugin) -> AsyncIterator[Api]:
    """A client of ``plugin``."""
    async with client_of(plugin) as client:
        yield client


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A NATS connection for the test itself."""
    client = await nats.connect(nats_server.url)
    yield client
    await client.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def shared_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """A client of one plugin (and nats-server) shared by a module's tests, on each
    database backend in turn."""
    root = tmp_path_factory.mktemp("users")
    async with contextlib.AsyncExitStack() as stack:
        database_url = await stack.enter_async_context(empty_database(request.param, root, request))
        server = await stack.enter_async_context(NatsServer(root / "jetstream"))
        wired = await stack.enter_async_context(
            running_plugin(root / "data", server.url, database_url=database_url)
        )
        yield await stack.enter_async_context(client_of(wired))


@pytest.fixture
async def twin_api(
    tmp_path: Path, nats_server: NatsServer, database_url: str, plugin: UsersPlugin
) -> AsyncIterator[Api]:
    """A client of a second instance of the plugin, on ``plugin``'s database: two
    replicas whose write transactions really interleave in the database."""
    async with (
        running_plugin(tmp_path / "data", nats_server.url, database_url=database_url) as twin,
        client_of(twin) as client,
    ):
        yield client
