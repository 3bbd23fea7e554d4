"""Database access for plugins: async SQLAlchemy on SQLite (the default) or PostgreSQL.

::

    db = Database(config.database_url_for("users"))
    await db.upgrade(MIGRATIONS)              # the schema at its newest revision
                                              # (a plugin: db.attach(server, MIGRATIONS))
    async with db.transaction() as session:   # committed on exit, rolled back on error
        session.add(UserRow(...))
    async with db.read() as session:          # a read-only snapshot
        rows = (await session.scalars(select(UserRow))).all()
    await db.close()

SQLite gets what concurrent use needs: the WAL journal (readers never block the writer),
a busy timeout (another process holding the write lock is waited for, not an error) and
foreign keys on. Its statements run on the event loop's thread, without aiosqlite's
thread hops (:mod:`meshkit.sqlite_inline`), and a lock held by another process is waited
for asynchronously. A write transaction begins with ``BEGIN IMMEDIATE``, so it takes the
write lock up front: a deferred transaction that reads and then writes can fail halfway
with "database is locked" when another writer committed in between, and no busy timeout
helps there. Write transactions of one process also take turns on an ``asyncio.Lock``, so
they queue fairly in the event loop instead of spinning in SQLite's busy handler. Reads
begin ``DEFERRED`` and run beside the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, overload

from sqlalchemy import MetaData, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import StaticPool

from meshkit import sqlite_inline

if TYPE_CHECKING:
    from meshkit.migrations import Migrations

__all__ = ["Database", "DatabaseError", "Lifecycle", "async_url", "aware_utc", "naive_utc"]

# Execution option read by the BEGIN hook: how a SQLite transaction begins.
_BEGIN = "plugmesh_sqlite_begin"

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "sqlite+pysqlite": "sqlite+aiosqlite",
    "sqlite+aiosqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "postgresql+psycopg2": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql+asyncpg": "postgresql+asyncpg",
}


@overload
def naive_utc(time: dt.datetime) -> dt.datetime: ...
@overload
def naive_utc(time: None) -> None: ...
@overload
def naive_utc(time: dt.datetime | None) -> dt.datetime | None: ...
def naive_utc(time: dt.datetime | None) -> dt.datetime | None:
    """``time`` as tables store it: naive, in UTC (None stays None).

    Every plugin's time columns are ``DateTime()`` without a zone: SQLite keeps no zone,
    and one form on every database keeps comparisons in SQL exact.
    """
    return None if time is None else time.astimezone(dt.UTC).replace(tzinfo=None)


@overload
def aware_utc(time: dt.datetime) -> dt.datetime: ...
@overload
def aware_utc(time: None) -> None: ...
@overload
def aware_utc(time: dt.datetime | None) -> dt.datetime | None: ...
def aware_utc(time: dt.datetime | None) -> dt.datetime | None:
    """A time read from a table (naive UTC) as an aware UTC datetime (None stays None)."""
    return None if time is None else time.replace(tzinfo=dt.UTC)


class Lifecycle(Protocol):
    """Something with a start and a stop, such as :class:`meshkit.server.PluginServer`."""

    def add_startup(self, startup: Callable[[], Awaitable[None]]) -> None:
        """Run ``startup`` before starting."""
        ...

    def add_closer(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` after stopping."""
        ...


class DatabaseError(ValueError):
    """A database URL that cannot be used, or a transaction opened where it would hang."""


def async_url(url: str | URL) -> URL:
    """Turn a database URL into one with an asyncio driver.

    ``sqlite:///path`` (what :meth:`MeshConfig.database_url_for` returns) becomes
    ``sqlite+aiosqlite:///path``; ``postgresql://`` becomes ``postgresql+psycopg://``.

    Raises:
        DatabaseError: The URL cannot be parsed or names a database without an async driver.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"database URL {url!r} cannot be parsed: {exc}") from exc
    driver = _ASYNC_DRIVERS.get(parsed.drivername)
    if driver is None:
        shown = parsed.render_as_string(hide_password=True)
        raise DatabaseError(
            f"database URL {shown!r}: unsupported driver {parsed.drivername!r} "
            "(use sqlite:///<file> or postgresql://…)"
        )
    return parsed.set(drivername=driver)


class Database:
    """An async engine and its sessions, with SQLite's concurrency handled.

    Args:
        url: A SQLAlchemy URL; a synchronous one (``sqlite:///…``) is converted by
            :func:`async_url`. The directory of a SQLite file is created.
        busy_timeout_millis: How long SQLite waits for another process's write lock.
        echo: Log every statement.
    """

    def __init__(self, url: str | URL, *, busy_timeout_millis: int = 10_000, echo: bool = False):
        self.url = async_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        memory = self.is_sqlite and self.url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"echo": echo}
        if memory:
            # One connection, shared: every session of an in-memory database must take turns.
            kwargs.update(poolclass=StaticPool)
        elif self.is_sqlite and self.url.database:
            Path(self.url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if self.is_sqlite:
            path = ":memory:" if memory else str(Path(self.url.database or "").expanduser())
            busy = busy_timeout_millis / 1000

            async def connect() -> sqlite_inline.InlineConnection:
                return await sqlite_inline.connect(path, busy_timeout_seconds=busy)

            kwargs["async_creator"] = connect
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine)
        self._writes = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reads = async_sessionmaker(
            self.engine.execution_options(**{_BEGIN: "DEFERRED"}), expire_on_commit=False
        )
        self._write_turn = asyncio.Lock() if self.is_sqlite else None
        self._read_turn = self._write_turn if memory else None
        self._writer: asyncio.Task[Any] | None = None
        self._closed = False

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.url.get_backend_name()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction: committed on exit, rolled back on an exception.

        On SQLite the write lock is held from the start, and other write transactions of
        this process wait their turn.

        Raises:
            DatabaseError: This task already holds a write transaction of this database
                (SQLite), which the new one would wait for forever.
        """
        task = asyncio.current_task()
        if self._write_turn is not None and task is not None and task is self._writer:
            # Waiting for our own lock would hang forever: say so instead.
            raise DatabaseError("a write transaction is already open in this task; use its session")
        async with _turn(self._write_turn):
            self._writer = task
            try:
                async with self._writes() as session, session.begin():
                    yield session
            finally:
                self._writer = None

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reading; its transaction is rolled back on exit."""
        async with _turn(self._read_turn), self._reads() as session:
            yield session

    async def upgrade(self, *chains: Migrations) -> None:
        """Bring each chain of revisions to its newest, one transaction per chain, in order
        (:mod:`meshkit.migrations`)."""
        for chain in chains:
            async with _turn(self._write_turn), self.engine.begin() as connection:
                await connection.run_sync(chain.upgrade)

    def attach(self, server: Lifecycle, *chains: Migrations) -> None:
        """Bring ``chains`` to their newest revision when ``server`` starts, and close the
        database after it stopped.

        How every plugin migrates: its build attaches its database first, so the tables
        exist before anything attached later starts (the event bus, which migrates its
        own chain, then consumes), and the database closes after those stopped (closers
        run newest first).
        """

        async def migrate() -> None:
            await self.upgrade(*chains)

        server.add_startup(migrate)
        server.add_closer(self.close)

    async def create_all(self, metadata: MetaData) -> None:
        """Create the tables and indexes of ``metadata`` that do not exist yet."""
        async with _turn(self._write_turn), self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)

    async def close(self) -> None:
        """Close every pooled connection. Safe to call twice."""
        if not self._closed:
            self._closed = True
            await self.engine.dispose()


@contextlib.asynccontextmanager
async def _turn(lock: asyncio.Lock | None) -> AsyncIterator[None]:
    if lock is None:
        yield
    else:
        async with lock:
            yield


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy, not the driver, emits BEGIN (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # No busy timeout of SQLite's: it would block the event loop; the connection
            # waits for a lock asynchronously instead (meshkit.sqlite_inline).
            cursor.execute("PRAGMA busy_timeout = 0")
            _use_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql(
            f"BEGIN {connection.get_execution_options().get(_BEGIN, 'IMMEDIATE')}"
        )


def _use_wal(cursor: Any) -> None:
    try:
        cursor.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError as exc:
        # Processes opening a new file at once: another connection is switching it to WAL
        # (or holds a lock meanwhile), and this pragma does not wait for the busy timeout.
        # WAL is a property of the file, so this connection uses it once that is done.
        if "locked" not in str(exc):
            raise
