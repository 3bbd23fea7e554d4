"""Which outbox rows a transaction commits: exactly those of the writes it kept (SQLite only)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db import Database
from meshkit.events import Outbox
from meshkit.events.outbox import OutboxRow
from meshkit.events.tables import OutboxRecord, metadata
from tests.events.helpers import user_created


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'outbox.db'}")
    await database.create_all(metadata)
    yield database
    await database.close()


class _Handed:
    def __init__(self, outbox: Outbox) -> None:
        self.rows: list[str] = []
        outbox.on_commit(self)

    def __call__(self, rows: Sequence[OutboxRow]) -> None:
        self.rows += [row.event_id for row in rows]


async def _stored(db: Database) -> list[str]:
    async with db.read() as session:
        return list((await session.scalars(select(OutboxRecord.event_id))).all())


async def test_savepoints_keep_only_the_rows_of_what_they_kept(db: Database) -> None:
    outbox = Outbox("/plugmesh/test")
    handed = _Handed(outbox)
    async with db.transaction() as session:
        kept = outbox.add(session, user_created("a"))
        async with session.begin_nested() as outer:
            async with session.begin_nested():
                inner = outbox.add(session, user_created("inner"))
            await outer.rollback()  # takes the released inner savepoint's row with it
        async with session.begin_nested():
            released = outbox.add(session, user_created("b"))
        async with session.begin_nested() as undone:
            outbox.add(session, user_created("c"))
            await undone.rollback()

    assert inner.id not in handed.rows
    assert sorted(await _stored(db)) == sorted([kept.id, released.id])
    assert sorted(handed.rows) == sorted([kept.id, released.id])


async def test_a_rolled_back_transaction_leaves_nothing_behind_for_the_next(db: Database) -> None:
    outbox = Outbox("/plugmesh/test")
    handed = _Handed(outbox)
    async with AsyncSession(db.engine) as session:  # no transaction yet: add begins one
        outbox.add(session, user_created("a"))
        await session.rollback()
        second = outbox.add(session, user_created("b"))
        await session.commit()

    assert await _stored(db) == [second.id]
    assert handed.rows == [second.id]


async def test_the_rows_of_one_transaction_are_handed_over_in_the_order_they_were_added(
    db: Database,
) -> None:
    outbox = Outbox("/plugmesh/test")
    handed = _Handed(outbox)
    async with db.transaction() as session:
        ids = [outbox.add(session, user_created(str(i))).id for i in range(50)]

    assert handed.rows == ids
    assert await _stored(db) == sorted(ids)
