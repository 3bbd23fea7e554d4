"""SQLite without aiosqlite's thread: another process's lock is waited for without
blocking the event loop, up to the busy timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from meshkit.db import Database

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def database_file(tmp_path: Path) -> Path:
    path = tmp_path / "x.db"
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE t (n INTEGER)")
    return path


@pytest.fixture
def other_process(database_file: Path) -> Iterator[sqlite3.Connection]:
    """A connection of its own, standing for another process."""
    connection = sqlite3.connect(database_file, isolation_level=None, check_same_thread=False)
    yield connection
    connection.close()


async def test_a_write_waits_for_another_writers_lock_while_the_loop_runs_on(
    database_file: Path, other_process: sqlite3.Connection
) -> None:
    db = Database(f"sqlite:///{database_file}", busy_timeout_millis=5_000)
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("INSERT INTO t VALUES (1)")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def write() -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO t VALUES (2)"))

    ticker = asyncio.create_task(tick())
    writing = asyncio.create_task(write())
    try:
        await asyncio.sleep(0.3)
        assert not writing.done()  # waiting for the lock
        assert ticks >= 10  # and the loop was not blocked meanwhile
        other_process.execute("COMMIT")
        await asyncio.wait_for(writing, 5)
        async with db.read() as session:
            rows = (await session.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
        assert rows == [1, 2]
    finally:
        ticker.cancel()
        await db.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_write(
    database_file: Path, other_process: sqlite3.Connection
) -> None:
    db = Database(f"sqlite:///{database_file}", busy_timeout_millis=300)
    other_process.execute("BEGIN IMMEDIATE")
    began = time.monotonic()
    try:
        with pytest.raises(Exception, match="database is locked"):
            async with db.transaction() as session:
                await session.execute(text("INSERT INTO t VALUES (2)"))
        assert 0.25 <= time.monotonic() - began < 5
    finally:
        other_process.execute("ROLLBACK")
        await db.close()


async def test_reads_run_beside_another_processs_write_transaction(
    database_file: Path, other_process: sqlite3.Connection
) -> None:
    db = Database(f"sqlite:///{database_file}", busy_timeout_millis=300)
    other_process.execute("BEGIN IMMEDIATE")
    other_process.execute("INSERT INTO t VALUES (1)")
    try:
        async with db.read() as session:
            rows = (await session.execute(text("SELECT n FROM t"))).scalars().all()
        assert rows == []  # the uncommitted row is not seen, and nothing waited
    finally:
        other_process.execute("ROLLBACK")
        await db.close()
