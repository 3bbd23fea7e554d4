"""What the audit plugin does, whoever asks: the API (:mod:`services.audit.service`), the
event recorder (:mod:`services.audit.events`) or retention (:mod:`services.audit.retention`).

Rules kept here: the log is append-only and hash-chained (:mod:`services.audit.chain`); an
entry id is recorded once (appending an id the log holds returns that entry); an export
ends at the newest entry that existed when it began; verify and pruning read the chain in
one snapshot. Pruning removes a prefix of the chain and keeps, as the anchor, the sequence
and hash of the last entry it removed; verify starts from that anchor, so what remains
checks exactly as before; a broken link is never pruned away.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from services.audit.model import (
    Entry,
    EntryDraft,
    EntryFilter,
    PruneResult,
    Verification,
    Visibility,
)
from services.audit.store import AuditStore

__all__ = ["AuditLog"]

log = logging.getLogger(__name__)


class AuditLog:
    """The chain of entries in the plugin's database.

    Args:
        database: The plugin's database.
        clock: Gives entries their record time.
        prune_batch: Entries removed per transaction while pruning, so appends are not
            held up for long.
        store: The SQL behind it.
    """

    def __init__(
        self,
        database: Database,
        *,
        clock: Clock = SYSTEM_CLOCK,
        prune_batch: int = 5_000,
        store: AuditStore | None = None,
    ) -> None:
        self._db = database
        self._prune_batch = prune_batch
        self._store = store or AuditStore(database.dialect, clock)

    @property
    def database(self) -> Database:
        """The database the chain lives in."""
        return self._db

    async def start(self) -> None:
        """Create the chain row when missing, once the tables exist. Safe to call twice."""
        async with self._db.transaction() as session:
            await self._store.create_chain(session)

    # --- writes ---------------------------------------------------------------------

    async def append(
        self, session: AsyncSession, draft: EntryDraft, *, assume_new: bool = False
    ) -> tuple[Entry, bool]:
        """Append ``draft`` in the caller's write transaction, unless its id is taken.

        Args:
            session: The write transaction (the event subscriber's).
            draft: The entry.
            assume_new: Skip looking the id up; an id that exists then makes the
                transaction fail (unique index) instead of returning the entry. For
                callers that retry the other way on failure: the lookup is most of an
                append's cost.

        Returns:
            The stored entry and whether it was appended now (``False``: an entry with
            that id existed and is returned unchanged).
        """
        return await self._store.append(session, draft, assume_new=assume_new)

    async def create(self, draft: EntryDraft) -> tuple[Entry, bool]:
        """Append ``draft`` in a transaction of its own; see :meth:`append`."""
        async with self._db.transaction() as session:
            return await self._store.append(session, draft)

    # --- reads ----------------------------------------------------------------------

    async def get(self, entry_id: str, visibility: Visibility) -> Entry | None:
        """The entry with ``entry_id``, or ``None`` when there is none the reader may see."""
        async with self._db.read() as session:
            return await self._store.get(session, entry_id, visibility)

    async def page(
        self,
        where: EntryFilter,
        visibility: Visibility,
        *,
        before_sequence: int | None,
        limit: int,
    ) -> list[Entry]:
        """Up to ``limit`` matching entries, newest first, below ``before_sequence``."""
        async with self._db.read() as session:
            return await self._store.page(
                session, where, visibility, before_sequence=before_sequence, limit=limit
            )

    async def export(
        self, where: EntryFilter, visibility: Visibility, *, after_sequence: int = 0
    ) -> AsyncIterator[Entry]:
        """Every matching entry above ``after_sequence``, oldest first.

        Ends at the newest entry that existed when the export began, so an export under
        a steady stream of appends still ends. Reads a batch at a time, each in a short
        transaction of its own, so a slow consumer holds nothing open.
        """
        async with self._db.read() as session:
            upper = await self._store.head_sequence(session)
        last = after_sequence
        while last < upper:
            async with self._db.read() as session:
                entries = await self._store.oldest_first(
                    session, where, visibility, after_sequence=last, through_sequence=upper
                )
            if not entries:
                return
            for entry in entries:
                yield entry
            last = entries[-1].sequence

    async def verify(self, start_sequence: int = 0, end_sequence: int = 0) -> Verification:
        """Walk the chain from ``start_sequence`` to ``end_sequence`` (0: the head)."""
        async with self._db.read() as session:
            return await self._store.verify(session, start_sequence, end_sequence)

    # --- retention ------------------------------------------------------------------

    async def prune(self, cutoff: dt.datetime) -> PruneResult:
        """Remove the entries recorded before ``cutoff``, keeping the rest verifiable.

        Only an intact prefix is removed: when the chain is broken in the range, pruning
        stops before the break, so retention never erases the evidence of tampering.
        """
        async with self._db.read() as session:
            anchor = await self._store.anchor(session)
            through = await self._store.last_recorded_before(session, cutoff)
        if through <= anchor.through_sequence:
            return anchor
        check = await self.verify(anchor.through_sequence + 1, through)
        if check.broken is not None:
            log.error(
                "the audit chain is broken; pruning stops before the break",
                extra={"sequence": check.broken.sequence, "reason": check.broken.message},
            )
            through = check.broken.sequence - 1
        removed = 0
        while True:
            async with self._db.transaction() as session:
                batch, more = await self._store.prune_batch(session, through, self._prune_batch)
            removed += batch.removed
            if not more:
                return dataclasses.replace(batch, removed=removed)
