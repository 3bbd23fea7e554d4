"""The audit log's persistence: appending to the chain, reading, verifying and pruning.

Appends lock the single ``audit_chain`` row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite every write transaction holds the database's write lock from ``BEGIN IMMEDIATE``),
so sequences are given out without gaps and commit in order: a reader never sees sequence
*n + 1* before *n*. That is what makes the newest-first keyset pages stable while
entries arrive: a page continues below the last sequence it returned, and new entries
only ever land above.

Verification and pruning read the chain in one snapshot. Pruning removes a prefix of the
chain and keeps, as the anchor, the sequence and hash of the last entry it removed; verify
starts from that anchor, so what remains checks exactly as before.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from sqlalchemy import delete as sql_delete
from sqlalchemy import func, inspect, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from meshkit.db import Database
from services.audit.chain import ChainWalker, seal
from services.audit.model import (
    Clock,
    Entry,
    EntryDraft,
    EntryFilter,
    PruneResult,
    SystemClock,
    Verification,
    Visibility,
)
from services.audit.queries import matching, visible
from services.audit.tables import (
    CHAIN_ROW_ID,
    MIGRATIONS,
    ChainRow,
    EntryRow,
    MalformedRow,
    entry_of,
    naive,
    row_of,
)

__all__ = ["AuditStore"]

log = logging.getLogger(__name__)

_READ_BATCH = 1_000
_APPENDING_KEY = "plugmesh_audit_appending"


class AuditStore:
    """The chain of entries in the plugin's database.

    Args:
        database: The plugin's database.
        clock: Gives entries their record time.
        prune_batch: Entries removed per transaction while pruning, so appends are not
            held up for long.
    """

    def __init__(
        self, database: Database, *, clock: Clock | None = None, prune_batch: int = 5_000
    ) -> None:
        self._db = database
        self._clock = clock or SystemClock()
        self._prune_batch = prune_batch

    @property
    def database(self) -> Database:
        """The database the chain lives in."""
        return self._db

    async def start(self) -> None:
        """Create the tables and the chain row when missing. Safe to call twice."""
        await self._db.upgrade(MIGRATIONS)
        values = {
            "id": CHAIN_ROW_ID,
            "head_sequence": 0,
            "head_hash": "",
            "anchor_sequence": 0,
            "anchor_hash": "",
        }
        dialect = postgresql if self._db.dialect == "postgresql" else sqlite
        async with self._db.transaction() as session:
            await session.execute(
                dialect.insert(ChainRow)
                .values(values)
                .on_conflict_do_nothing(index_elements=["id"])
            )

    async def append(
        self, session: AsyncSession, draft: EntryDraft, *, assume_new: bool = False
    ) -> tuple[Entry, bool]:
        """Append ``draft`` in the caller's write transaction, unless its id is taken.

        Appends in one transaction share one lock of the chain row and reach the database
        in one batch when the session flushes.

        Args:
            session: The write transaction.
            draft: The entry.
            assume_new: Skip looking the id up; an id that exists then makes the
                transaction fail (unique index) instead of returning the entry. For
                callers that retry the other way on failure: the lookup is most of an
                append's cost.

        Returns:
            The stored entry and whether it was appended now (``False``: an entry with
            that id existed and is returned unchanged).
        """
        appending = _appending(session)
        chain = await self._chain(session, appending)
        existing = appending.pending(draft.entry_id)
        if existing is None and not assume_new:
            with session.no_autoflush:
                existing = await session.scalar(
                    select(EntryRow).where(EntryRow.entry_id == draft.entry_id)
                )
        if existing is not None:
            return entry_of(existing), False
        entry = seal(
            draft,
            sequence=chain.head_sequence + 1,
            record_time=self._clock.now(),
            previous_hash=chain.head_hash,
        )
        row = row_of(entry)
        session.add(row)
        appending.added[entry.entry_id] = row
        chain.head_sequence = entry.sequence
        chain.head_hash = entry.hash
        return entry, True

    async def _chain(self, session: AsyncSession, appending: _Appending) -> ChainRow:
        """The chain row, locked for this transaction; fetched once per transaction.

        Fetched again when a rolled-back savepoint expired it, and on PostgreSQL inside a
        savepoint, whose rollback would release the row lock.
        """
        cached = appending.chain
        if (
            cached is not None
            and not inspect(cached).expired_attributes
            and not inspect(cached).detached
            and (self._db.is_sqlite or not session.in_nested_transaction())
        ):
            return cached
        appending.chain = await _lock_chain(session)
        return appending.chain

    async def create(self, draft: EntryDraft) -> tuple[Entry, bool]:
        """Append ``draft`` in a transaction of its own; see :meth:`append`."""
        async with self._db.transaction() as session:
            return await self.append(session, draft)

    async def get(self, entry_id: str, visibility: Visibility) -> Entry | None:
        """The entry with ``entry_id``, or ``None`` when there is none the reader may see."""
        query = select(EntryRow).where(EntryRow.entry_id == entry_id, *visible(visibility))
        async with self._db.read() as session:
            row = await session.scalar(query)
        return None if row is None else entry_of(row)

    async def page(
        self,
        where: EntryFilter,
        visibility: Visibility,
        *,
        before_sequence: int | None,
        limit: int,
    ) -> list[Entry]:
        """Up to ``limit`` matching entries, newest first, below ``before_sequence``."""
        conditions = [*matching(where, self._db.dialect), *visible(visibility)]
        if before_sequence is not None:
            conditions.append(EntryRow.sequence < before_sequence)
        query = select(EntryRow).where(*conditions).order_by(EntryRow.sequence.desc())
        async with self._db.read() as session:
            rows = (await session.scalars(query.limit(limit))).all()
        return [entry_of(row) for row in rows]

    async def export(
        self, where: EntryFilter, visibility: Visibility, *, after_sequence: int = 0
    ) -> AsyncIterator[Entry]:
        """Every matching entry above ``after_sequence``, oldest first.

        Ends at the newest entry that existed when the export began, so an export under
        a steady stream of appends still ends. Reads a batch at a time, each in a short
        transaction of its own, so a slow consumer holds nothing open.
        """
        async with self._db.read() as session:
            upper = await session.scalar(select(func.max(EntryRow.sequence))) or 0
        conditions = [*matching(where, self._db.dialect), *visible(visibility)]
        last = after_sequence
        while last < upper:
            query = (
                select(EntryRow)
                .where(EntryRow.sequence > last, EntryRow.sequence <= upper, *conditions)
                .order_by(EntryRow.sequence)
                .limit(_READ_BATCH)
            )
            async with self._db.read() as session:
                rows = (await session.scalars(query)).all()
            if not rows:
                return
            for row in rows:
                yield entry_of(row)
            last = rows[-1].sequence

    async def verify(self, start_sequence: int = 0, end_sequence: int = 0) -> Verification:
        """Walk the chain from ``start_sequence`` to ``end_sequence`` (0: the head).

        The walk starts from the pruning anchor when ``start_sequence`` is at or below
        it, otherwise from the entry before ``start_sequence``.
        """
        async with self._db.read() as session:
            if self._db.dialect == "postgresql":
                # One snapshot for the whole walk (SQLite's WAL reads already have one).
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            chain = await session.get(ChainRow, CHAIN_ROW_ID)
            if chain is None or start_sequence > chain.head_sequence:
                return Verification(entries_checked=0, head_hash="")
            end = chain.head_sequence if end_sequence <= 0 else end_sequence
            walker = await _start_walk(session, chain, start_sequence)
            if walker.broken is None:
                await _walk(session, walker, end)
            if walker.broken is None and end >= chain.head_sequence:
                walker.end(chain.head_sequence, chain.head_hash)
        return walker.result()

    async def prune(self, cutoff: dt.datetime) -> PruneResult:
        """Remove the entries recorded before ``cutoff``, keeping the rest verifiable.

        Only an intact prefix is removed: when the chain is broken in the range, pruning
        stops before the break, so retention never erases the evidence of tampering.
        """
        async with self._db.read() as session:
            chain = await session.get(ChainRow, CHAIN_ROW_ID)
            through = await session.scalar(
                select(func.max(EntryRow.sequence)).where(EntryRow.record_time < naive(cutoff))
            )
        if chain is None or through is None or through <= chain.anchor_sequence:
            return _unchanged(chain)
        check = await self.verify(chain.anchor_sequence + 1, through)
        if check.broken is not None:
            log.error(
                "the audit chain is broken; pruning stops before the break",
                extra={"sequence": check.broken.sequence, "reason": check.broken.message},
            )
            through = check.broken.sequence - 1
        removed = 0
        while True:
            async with self._db.transaction() as session:
                chain = await _lock_chain(session)
                end = min(through, chain.anchor_sequence + self._prune_batch)
                if end <= chain.anchor_sequence:
                    return PruneResult(removed, chain.anchor_sequence, chain.anchor_hash)
                anchor_hash = await session.scalar(
                    select(EntryRow.hash).where(EntryRow.sequence == end)
                )
                if anchor_hash is None:  # removed by a concurrent pruner
                    return PruneResult(removed, chain.anchor_sequence, chain.anchor_hash)
                await session.execute(sql_delete(EntryRow).where(EntryRow.sequence <= end))
                removed += end - chain.anchor_sequence
                chain.anchor_sequence = end
                chain.anchor_hash = anchor_hash


@dataclass
class _Appending:
    """What the appends of one transaction share: the locked chain row, the rows added."""

    transaction: SessionTransaction | None
    chain: ChainRow | None = None
    added: dict[str, EntryRow] = field(default_factory=dict)

    def pending(self, entry_id: str) -> EntryRow | None:
        """The row appended for ``entry_id``, unless a savepoint's rollback dropped it."""
        row = self.added.get(entry_id)
        if row is None:
            return None
        state = inspect(row)
        return row if state.pending or state.persistent else None


def _appending(session: AsyncSession) -> _Appending:
    transaction = session.sync_session.get_transaction()
    appending = session.info.get(_APPENDING_KEY)
    if not isinstance(appending, _Appending) or appending.transaction is not transaction:
        appending = _Appending(transaction)
        session.info[_APPENDING_KEY] = appending
    return appending


async def _lock_chain(session: AsyncSession) -> ChainRow:
    query = (
        select(ChainRow)
        .where(ChainRow.id == CHAIN_ROW_ID)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    chain = await session.scalar(query)
    if chain is None:
        raise RuntimeError("the audit chain row is missing: AuditStore.start() was not called")
    return chain


async def _start_walk(session: AsyncSession, chain: ChainRow, start_sequence: int) -> ChainWalker:
    if start_sequence <= chain.anchor_sequence + 1:
        return ChainWalker(chain.anchor_sequence + 1, chain.anchor_hash)
    before = await session.scalar(
        select(EntryRow.hash).where(EntryRow.sequence == start_sequence - 1)
    )
    if before is not None:
        return ChainWalker(start_sequence, before)
    # The entry to link the start to is missing: a gap just before the range.
    walker = ChainWalker(start_sequence - 1, "")
    following = (
        await session.execute(
            select(EntryRow.sequence, EntryRow.entry_id)
            .where(EntryRow.sequence >= start_sequence)
            .order_by(EntryRow.sequence)
            .limit(1)
        )
    ).first()
    sequence, entry_id = following if following is not None else (start_sequence, "")
    walker.reject(sequence, entry_id, "missing")
    return walker


async def _walk(session: AsyncSession, walker: ChainWalker, end: int) -> None:
    last = walker.next_sequence - 1
    while last < end:
        query = (
            select(EntryRow)
            .where(EntryRow.sequence > last, EntryRow.sequence <= end)
            .order_by(EntryRow.sequence)
            .limit(_READ_BATCH)
        )
        rows = (await session.scalars(query)).all()
        if not rows:
            return
        for row in rows:
            try:
                entry = entry_of(row, strict=True)
            except MalformedRow as exc:
                walker.reject(row.sequence, row.entry_id, str(exc))
                return
            if not walker.check(entry):
                return
        last = rows[-1].sequence
        session.expunge_all()


def _unchanged(chain: ChainRow | None) -> PruneResult:
    if chain is None:
        return PruneResult(0, 0, "")
    return PruneResult(0, chain.anchor_sequence, chain.anchor_hash)
