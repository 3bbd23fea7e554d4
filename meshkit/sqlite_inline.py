"""SQLite for SQLAlchemy's asyncio engine without a thread per connection.

SQLAlchemy's async SQLite dialect drives ``aiosqlite``, which runs every call of a
connection (open a cursor, execute, fetch, close, commit) in a thread of its own and
wakes the event loop for each answer. A statement costs several such round trips, and a
one-row write transaction about 2 ms of CPU, most of it handing work between threads;
the statements themselves take microseconds. :func:`connect` gives the dialect a
connection of the same shape whose calls run on the event loop's thread, at once.

What could make such a call wait is another process's write lock: the connection is
opened with no busy timeout of SQLite's, and a statement SQLite answers ``SQLITE_BUSY``
is tried again after an asynchronous sleep (1 ms, doubling up to 50 ms) until the
database's busy timeout, so the loop never blocks on a lock. A statement that SQLite
answers ``SQLITE_BUSY`` did nothing, so trying it again is safe: writes begin with
``BEGIN IMMEDIATE`` (:mod:`meshkit.db`), and a read never waits for a writer in WAL mode.

A long statement (a migration, a prune of many rows) does hold the loop while it runs;
PostgreSQL is the database for heavy use.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

__all__ = ["InlineConnection", "connect"]

_FIRST_WAIT_SECONDS = 0.001
_LONGEST_WAIT_SECONDS = 0.05
# SQLITE_BUSY_SNAPSHOT: a read transaction cannot become a write one; trying again in
# the same transaction cannot help.
_BUSY_SNAPSHOT = sqlite3.SQLITE_BUSY | (2 << 8)


async def connect(database: str, *, busy_timeout_seconds: float) -> InlineConnection:
    """Open ``database`` (a file path, or ``:memory:``)."""
    connection = sqlite3.connect(database, isolation_level=None, check_same_thread=False, timeout=0)
    return InlineConnection(connection, busy_timeout_seconds=busy_timeout_seconds)


async def _retried(call: Callable[[], Any], busy_timeout_seconds: float) -> Any:
    """``call()``; when SQLite answers ``SQLITE_BUSY``, again after a sleep, until the
    busy timeout."""
    deadline: float | None = None
    wait = _FIRST_WAIT_SECONDS
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF != sqlite3.SQLITE_BUSY or code == _BUSY_SNAPSHOT:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + busy_timeout_seconds
            if now >= deadline:
                raise
            await asyncio.sleep(min(wait, deadline - now))
            wait = min(wait * 2, _LONGEST_WAIT_SECONDS)


class _Inline:
    """Stands in for aiosqlite's queue of calls, which SQLAlchemy's dialect uses to set
    the isolation level: the call runs at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class InlineCursor:
    """A ``sqlite3`` cursor with aiosqlite's coroutine methods."""

    def __init__(self, cursor: sqlite3.Cursor, busy_timeout_seconds: float) -> None:
        self._cursor = cursor
        self._busy = busy_timeout_seconds

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        await _retried(lambda: self._cursor.execute(sql, parameters), self._busy)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> InlineCursor:
        rows = list(parameters)  # an iterator would be spent by a first, busy, try
        await _retried(lambda: self._cursor.executemany(sql, rows), self._busy)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> Sequence[Any]:
        return self._cursor.fetchall()

    async def setinputsizes(self, *sizes: Any) -> None:
        return None

    async def nextset(self) -> None:
        return None

    async def close(self) -> None:
        self._cursor.close()

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        while (row := self._cursor.fetchone()) is not None:
            yield row


class InlineConnection:
    """A ``sqlite3`` connection with the part of ``aiosqlite.Connection`` that
    SQLAlchemy's aiosqlite dialect uses."""

    def __init__(self, connection: sqlite3.Connection, *, busy_timeout_seconds: float) -> None:
        self._connection: sqlite3.Connection | None = connection
        self._conn = connection  # what the dialect's isolation-level setter is given
        self._tx = _Inline()
        self._busy = busy_timeout_seconds

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @isolation_level.setter
    def isolation_level(self, value: Any) -> None:
        self._conn.isolation_level = value

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor(), self._busy)

    async def commit(self) -> None:
        await _retried(self._conn.commit, self._busy)

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Close at once (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()
