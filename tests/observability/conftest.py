"""Fixtures: one whole mesh per test module (:mod:`tests.gateway.auth.mesh`), every
process serving its metrics on a port of its own; or a real nats-server and two plugin
databases for the event bus's metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from meshkit.db import Database
from tests.gateway.auth.mesh import Mesh, running_mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def observed_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """A whole mesh, each process serving its metrics, shared by a module's tests
    (``loop_scope="module"``)."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running


@pytest.fixture
async def publisher_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The publishing plugin's own SQLite database."""
    db = Database(f"sqlite:///{tmp_path / 'publisher.db'}")
    yield db
    await db.close()


@pytest.fixture
async def consumer_db(tmp_path: Path) -> AsyncIterator[Database]:
    """The consuming plugin's own SQLite database."""
    db = Database(f"sqlite:///{tmp_path / 'consumer.db'}")
    yield db
    await db.close()
