"""meshkit.db: URLs, SQLite's settings, and concurrent writers that never lose an update."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.config import MeshConfig
from meshkit.db import Database, DatabaseError, async_url


class _Base(DeclarativeBase):
    pass


class Counter(_Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("sqlite:///data/users.db", "sqlite+aiosqlite:///data/users.db", id="sqlite"),
        pytest.param("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db", id="already-async"),
        pytest.param("sqlite://", "sqlite+aiosqlite://", id="memory"),
        pytest.param(
            "postgresql://u:p@db/plugmesh", "postgresql+psycopg://u:***@db/plugmesh", id="postgres"
        ),
        pytest.param("postgres://db/x", "postgresql+psycopg://db/x", id="postgres-alias"),
        pytest.param(
            "postgresql+psycopg2://db/x", "postgresql+psycopg://db/x", id="psycopg2-to-psycopg"
        ),
    ],
)
def test_urls_get_an_asyncio_driver(url: str, expected: str) -> None:
    assert async_url(url).render_as_string(hide_password=True) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("mysql://db/x", "unsupported driver 'mysql'", id="mysql"),
        pytest.param("not a url", "cannot be parsed", id="garbage"),
    ],
)
def test_an_unusable_url_is_refused_saying_why(url: str, message: str) -> None:
    with pytest.raises(DatabaseError, match=message):
        async_url(url)


async def test_the_url_of_a_process_becomes_a_sqlite_file_in_wal_mode(tmp_path: Path) -> None:
    config = MeshConfig.from_env({"PLUGMESH_DATA_DIR": str(tmp_path / "data")})
    db = Database(config.database_url_for("users"))
    try:
        async with db.read() as session:
            journal = await session.scalar(text("PRAGMA journal_mode"))
            foreign_keys = await session.scalar(text("PRAGMA foreign_keys"))
    finally:
        await db.close()
        await db.close()
    assert (journal, foreign_keys) == ("wal", 1)
    assert (tmp_path / "data" / "users.db").is_file()


async def test_concurrent_read_modify_write_transactions_lose_no_update(tmp_path: Path) -> None:
    # Two Database objects on one file stand for two processes: they share only SQLite's
    # lock. Each transaction reads the counter, yields, and writes it back.
    dbs = [Database(f"sqlite:///{tmp_path / 'shared.db'}") for _ in range(2)]
    await dbs[0].create_all(_Base.metadata)
    async with dbs[0].transaction() as session:
        session.add(Counter(name="c", value=0))

    async def increment(db: Database) -> None:
        async with db.transaction() as session:
            counter = (await session.scalars(select(Counter))).one()
            await asyncio.sleep(0)
            counter.value += 1

    try:
        await asyncio.gather(*(increment(dbs[i % 2]) for i in range(200)))
        async with dbs[1].read() as session:
            value = (await session.scalars(select(Counter.value))).one()
    finally:
        for db in dbs:
            await db.close()
    assert value == 200


async def test_a_failed_transaction_rolls_back(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    await db.create_all(_Base.metadata)
    try:

        async def fail() -> None:
            async with db.transaction() as session:
                session.add(Counter(name="c", value=1))
                await session.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail()
        async with db.read() as session:
            assert (await session.scalars(select(Counter))).all() == []
    finally:
        await db.close()


async def test_an_in_memory_database_is_shared_by_its_sessions() -> None:
    db = Database("sqlite://")
    await db.create_all(_Base.metadata)
    try:
        async with db.transaction() as session:
            session.add(Counter(name="c", value=3))
        async with db.read() as session:
            assert (await session.scalars(select(Counter.value))).one() == 3
    finally:
        await db.close()


async def test_a_nested_write_transaction_in_one_task_is_refused_not_hung(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    await db.create_all(_Base.metadata)

    async def nested() -> None:
        async with db.transaction(), db.transaction():
            pass

    try:
        with pytest.raises(DatabaseError, match="already open in this task"):
            await nested()
        async with db.transaction() as session:  # the lock was released
            session.add(Counter(name="c", value=1))
    finally:
        await db.close()
