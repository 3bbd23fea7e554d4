from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from nats.aio.client import Client

from launcher.natsd import NatsServer
from meshkit.db import Database
from meshkit.events.settings import EventSettings
from meshkit.events.streams import ensure_streams
from tests.events.helpers import Base, connect


@pytest.fixture
async def nc(nats_server: NatsServer) -> AsyncIterator[Client]:
    """A NATS client of the test itself, with the streams in place."""
    client = await connect(nats_server.url)
    await ensure_streams(client.jetstream(), EventSettings())
    yield client
    await client.close()


async def _database(path: Path) -> Database:
    db = Database(f"sqlite:///{path}")
    await db.create_all(Base.metadata)
    return db


@pytest.fixture
async def consumer_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The consumer plugin's own SQLite database."""
    db = await _database(tmp_path / "consumer.db")
    yield db
    await db.close()


@pytest.fixture
async def publisher_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The publisher plugin's own SQLite database."""
    db = await _database(tmp_path / "publisher.db")
    yield db
    await db.close()
