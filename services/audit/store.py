"""The audit log in the plugin's own database (the rows of :mod:`services.audit.tables`).

Every method works inside a session its caller opened (:class:`~services.audit.core.AuditLog`
opens them, or the event subscriber's transaction). The store speaks domain objects
(:mod:`services.audit.model`); it never sees protobuf.

Appends lock the single ``audit_chain`` row (``SELECT … FOR UPDATE`` on PostgreSQL; on
SQLite every write transaction holds the database's write lock from ``BEGIN IMMEDIATE``),
so sequences are given out without gaps and commit in order: a reader never sees sequence
*n + 1* before *n*. That is what makes the newest-first keyset pages stable while
entries arrive: a page continues below the last sequence it returned, and new entries
only ever land above.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, func, inspect, or_, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import SessionTransaction

from meshkit.clock import Clock
from meshkit.db import naive_utc
from services.audit.chain import ChainWalker, seal
from services.audit.model import (
    ActorType,
    Entry,
    EntryDraft,
    EntryFilter,
    Outcome,
    PruneResult,
    Verification,
    Visibility,
)
from services.audit.tables import CHAIN_ROW_ID, ChainRow, EntryRow, MalformedRow, entry_of, row_of

__all__ = ["AuditStore", "action_glob"]

_READ_BATCH = 1_000
_APPENDING_KEY = "plugmesh_audit_appending"


class AuditStore:
    """Reads and writes the chain in the session it is given.

    Args:
        dialect: The database's, ``sqlite`` or ``postgresql``.
        clock: Gives entries their record time, read once the chain is locked.
    """

    def __init__(self, dialect: str, clock: Clock) -> None:
        self._dialect = dialect
        self._clock = clock

    async def create_chain(self, session: AsyncSession) -> None:
        """Insert the chain row unless it exists."""
        values = {
            "id": CHAIN_ROW_ID,
            "head_sequence": 0,
            "head_hash": "",
            "anchor_sequence": 0,
            "anchor_hash": "",
        }
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        await session.execute(
            dialect.insert(ChainRow).values(values).on_conflict_do_nothing(index_elements=["id"])
        )

    async def append(
        self, session: AsyncSession, draft: EntryDraft, *, assume_new: bool = False
    ) -> tuple[Entry, bool]:
        """Append ``draft`` in the write transaction of ``session``, unless its id is taken.

        Appends in one transaction share one lock of the chain row and reach the database
        in one batch when the session flushes. ``assume_new`` skips looking the id up; an
        id that exists then makes the transaction fail (unique index).

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
            and (self._dialect == "sqlite" or not session.in_nested_transaction())
        ):
            return cached
        appending.chain = await _lock_chain(session)
        return appending.chain

    async def get(
        self, session: AsyncSession, entry_id: str, visibility: Visibility
    ) -> Entry | None:
        """The entry with ``entry_id``, or ``None`` when there is none the reader may see."""
        query = select(EntryRow).where(EntryRow.entry_id == entry_id, *visible(visibility))
        row = await session.scalar(query)
        return None if row is None else entry_of(row)

    async def page(
        self,
        session: AsyncSession,
        where: EntryFilter,
        visibility: Visibility,
        *,
        before_sequence: int | None,
        limit: int,
    ) -> list[Entry]:
        """Up to ``limit`` matching entries, newest first, below ``before_sequence``."""
        conditions = [*self._matching(where), *visible(visibility)]
        if before_sequence is not None:
            conditions.append(EntryRow.sequence < before_sequence)
        query = select(EntryRow).where(*conditions).order_by(EntryRow.sequence.desc())
        rows = (await session.scalars(query.limit(limit))).all()
        return [entry_of(row) for row in rows]

    async def head_sequence(self, session: AsyncSession) -> int:
        """The sequence of the newest entry; 0 when there is none."""
        return await session.scalar(select(func.max(EntryRow.sequence))) or 0

    async def oldest_first(
        self,
        session: AsyncSession,
        where: EntryFilter,
        visibility: Visibility,
        *,
        after_sequence: int,
        through_sequence: int,
    ) -> list[Entry]:
        """A batch of the matching entries above ``after_sequence`` and up to
        ``through_sequence``, oldest first."""
        query = (
            select(EntryRow)
            .where(
                EntryRow.sequence > after_sequence,
                EntryRow.sequence <= through_sequence,
                *self._matching(where),
                *visible(visibility),
            )
            .order_by(EntryRow.sequence)
            .limit(_READ_BATCH)
        )
        return [entry_of(row) for row in (await session.scalars(query)).all()]

    async def verify(
        self, session: AsyncSession, start_sequence: int, end_sequence: int
    ) -> Verification:
        """Walk the chain from ``start_sequence`` to ``end_sequence`` (0: the head), in one
        snapshot: call first thing in a read session.

        The walk starts from the pruning anchor when ``start_sequence`` is at or below
        it, otherwise from the entry before ``start_sequence``.
        """
        if self._dialect == "postgresql":
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

    async def anchor(self, session: AsyncSession) -> PruneResult:
        """Where the chain starts now: the sequence and hash of the newest entry pruning
        removed (0 and "" before any), as a pass that removed nothing."""
        chain = await session.get(ChainRow, CHAIN_ROW_ID)
        if chain is None:
            return PruneResult(0, 0, "")
        return PruneResult(0, chain.anchor_sequence, chain.anchor_hash)

    async def last_recorded_before(self, session: AsyncSession, cutoff: dt.datetime) -> int:
        """The sequence of the newest entry recorded before ``cutoff``; 0 for none."""
        query = select(func.max(EntryRow.sequence)).where(EntryRow.record_time < naive_utc(cutoff))
        return await session.scalar(query) or 0

    async def prune_batch(
        self, session: AsyncSession, through_sequence: int, batch: int
    ) -> tuple[PruneResult, bool]:
        """Remove up to ``batch`` entries of the chain's prefix through ``through_sequence``
        and move the anchor to the last one removed.

        Returns:
            The anchor after the batch (``removed`` counting this batch) and whether more
            remain to remove.
        """
        chain = await _lock_chain(session)
        end = min(through_sequence, chain.anchor_sequence + batch)
        if end <= chain.anchor_sequence:
            return PruneResult(0, chain.anchor_sequence, chain.anchor_hash), False
        anchor_hash = await session.scalar(select(EntryRow.hash).where(EntryRow.sequence == end))
        if anchor_hash is None:  # removed by a concurrent pruner
            return PruneResult(0, chain.anchor_sequence, chain.anchor_hash), False
        await session.execute(sql_delete(EntryRow).where(EntryRow.sequence <= end))
        removed = end - chain.anchor_sequence
        chain.anchor_sequence = end
        chain.anchor_hash = anchor_hash
        return PruneResult(removed, end, anchor_hash), end < through_sequence

    def _matching(self, where: EntryFilter) -> list[ColumnElement[bool]]:
        """The conditions of every criterion of ``where`` that is set."""
        conditions: list[ColumnElement[bool]] = []
        if where.user_id:
            conditions.append(EntryRow.actor_id == where.user_id)
        if where.actor_type is not ActorType.UNSPECIFIED:
            conditions.append(EntryRow.actor_type == where.actor_type.value)
        if where.action:
            conditions.append(action_glob(where.action, self._dialect))
        if where.resource:
            conditions.append(EntryRow.resource == where.resource)
        if where.outcome is not Outcome.UNSPECIFIED:
            conditions.append(EntryRow.outcome == where.outcome.value)
        if where.start_time is not None:
            conditions.append(EntryRow.occur_time >= naive_utc(where.start_time))
        if where.end_time is not None:
            conditions.append(EntryRow.occur_time < naive_utc(where.end_time))
        return conditions


def action_glob(pattern: str, dialect: str) -> ColumnElement[bool]:
    """``action`` matches ``pattern``, where ``*`` is any run; case-sensitive everywhere."""
    if "*" not in pattern:
        return EntryRow.action == pattern
    if dialect == "sqlite":
        # SQLite's LIKE ignores case; GLOB does not. Escape GLOB's other specials.
        escaped = "".join(f"[{c}]" if c in "?[" else c for c in pattern)
        return EntryRow.action.op("GLOB")(escaped)
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return EntryRow.action.like(escaped.replace("*", "%"), escape="\\")


def visible(visibility: Visibility) -> list[ColumnElement[bool]]:
    """The condition for entries the reader may see (none for an admin)."""
    if visibility.everything:
        return []
    allowed: list[ColumnElement[bool]] = []
    if visibility.actor is not None:
        allowed.append(
            and_(
                EntryRow.actor_type == visibility.actor.type.value,
                EntryRow.actor_id == visibility.actor.id,
            )
        )
    if visibility.resources:
        allowed.append(EntryRow.resource.in_(visibility.resources))
    return [or_(*allowed)] if allowed else [false()]


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
        raise RuntimeError("the audit chain row is missing: AuditLog.start() was not called")
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
        rows: Sequence[EntryRow] = (await session.scalars(query)).all()
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
