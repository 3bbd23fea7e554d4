"""Every chain of revisions, on SQLite and on a real PostgreSQL: from empty to head, head
equal to what the code maps, databases made before migrations adopted with their rows,
and processes starting at once migrating once."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import insert, inspect, select, text

from gateway.mcpservers.tables import MIGRATIONS as MCP_SERVERS
from meshkit.db import Database
from meshkit.events.tables import MIGRATIONS as EVENTS
from meshkit.events.tables import InboxRecord
from meshkit.migrations import Migrations
from registry.tables import MIGRATIONS as REGISTRY
from services.audit.tables import MIGRATIONS as AUDIT
from services.machineusers.tables import MIGRATIONS as MACHINE_USERS
from services.users.tables import MIGRATIONS as USERS

ALL = [EVENTS, USERS, MACHINE_USERS, AUDIT, REGISTRY, MCP_SERVERS]
CHAINS = [
    pytest.param(EVENTS, id="events"),
    pytest.param(USERS, id="users"),
    pytest.param(MACHINE_USERS, id="machineusers"),
    pytest.param(AUDIT, id="audit"),
    pytest.param(REGISTRY, id="registry"),
    pytest.param(MCP_SERVERS, id="mcpservers"),
]


async def state(database: Database, chain: Migrations) -> tuple[str | None, list[object]]:
    """The revision the database is at, and how its schema differs from the code's."""
    async with database.engine.connect() as connection:
        current = await connection.run_sync(chain.current)
        differences = await connection.run_sync(chain.differences)
    return current, differences


async def table_names(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


@pytest.mark.parametrize("chain", CHAINS)
async def test_empty_database_upgrades_to_head_that_matches_the_mapped_tables(
    database_url: str, chain: Migrations
) -> None:
    database = Database(database_url)
    try:
        await database.upgrade(chain)
        await database.upgrade(chain)  # at head already: nothing to do
        current, differences = await state(database, chain)
        tables = await table_names(database)
    finally:
        await database.close()

    assert current == chain.head()
    assert differences == []
    assert tables == {*chain.metadata.tables, chain.version_table}


@pytest.mark.parametrize("chain", CHAINS)
async def test_database_made_before_migrations_is_adopted_at_its_revision(
    database_url: str, chain: Migrations
) -> None:
    database = Database(database_url)
    try:
        # The first revision's schema, without the version table: what a process made
        # before it had migrations.
        async with database.engine.begin() as connection:
            await connection.run_sync(lambda sync: chain.upgrade(sync, target=chain.base()))
            await connection.execute(text(f"DROP TABLE {chain.version_table}"))
        await database.upgrade(chain)
        current, differences = await state(database, chain)
    finally:
        await database.close()

    assert current == chain.head()
    assert differences == []


async def test_rows_written_before_migrations_survive_the_first_upgrade(database_url: str) -> None:
    row = {
        "consumer": "audit",
        "event_id": "e-1",
        "event_type": "user.created",
        "processed_at": dt.datetime(2026, 1, 2, 3, 4, 5),
    }
    database = Database(database_url)
    try:
        await database.create_all(EVENTS.metadata)
        async with database.transaction() as session:
            await session.execute(insert(InboxRecord).values(row))
        await database.upgrade(EVENTS)
        async with database.read() as session:
            kept = (await session.execute(select(InboxRecord.__table__))).mappings().all()
    finally:
        await database.close()

    assert [dict(r) for r in kept] == [row]


async def test_chains_sharing_a_database_keep_their_own_versions(database_url: str) -> None:
    database = Database(database_url)
    try:
        await database.upgrade(*ALL)
        states = [await state(database, chain) for chain in ALL]
    finally:
        await database.close()

    assert states == [(chain.head(), []) for chain in ALL]


async def test_processes_starting_at_once_migrate_once(database_url: str) -> None:
    # Separate engines are separate connections, as separate processes would have.
    databases = [Database(database_url) for _ in range(4)]
    try:
        await asyncio.gather(*(db.upgrade(EVENTS, USERS) for db in databases))
        current, differences = await state(databases[0], USERS)
        tables = await table_names(databases[0])
    finally:
        for database in databases:
            await database.close()

    assert (current, differences) == (USERS.head(), [])
    assert tables == {*EVENTS.metadata.tables, *USERS.metadata.tables} | {
        EVENTS.version_table,
        USERS.version_table,
    }


def test_each_chain_has_its_own_version_table_and_tables() -> None:
    tables = [name for chain in ALL for name in chain.metadata.tables]
    assert len({chain.version_table for chain in ALL}) == len(ALL)
    assert len(set(tables)) == len(tables)
