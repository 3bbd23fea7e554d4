"""Empty databases for tests, on SQLite and on PostgreSQL.

The ``database_url`` fixture (tests/conftest.py) runs each test that asks for it on both
backends; fixtures of a wider scope call :func:`empty_database` with a backend of their
own parametrisation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.postgres import postgres_database

__all__ = ["BACKENDS", "empty_database", "is_sqlite"]

#: The database backends every database test runs on, as pytest ids.
BACKENDS = ("sqlite", "postgresql")


@contextlib.asynccontextmanager
async def empty_database(
    backend: str, folder: Path, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """The URL of an empty database on ``backend``.

    Args:
        backend: One of :data:`BACKENDS`.
        folder: Where the SQLite file goes, in a folder not made yet (whoever opens the
            database makes it).
        request: The asking fixture's request, for the session's PostgreSQL server
            (started on first use); the database made there is dropped after.
    """
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'databases' / 'test.db'}"
        return
    async with postgres_database(request.getfixturevalue("postgres_url")) as url:
        yield url


def is_sqlite(url: str) -> bool:
    """Whether ``url`` names a SQLite database."""
    return make_url(url).get_backend_name() == "sqlite"
