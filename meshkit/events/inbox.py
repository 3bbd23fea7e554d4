"""A consumer's inbox: the ids of the events it handled, in its own database.

The subscriber writes an event's inbox row in the transaction of the handler's own
writes, so either both commit or neither does; an event whose id is in the inbox is
acknowledged again without running the handler. That is what makes at-least-once
delivery exactly-once in effect.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db import Database
from meshkit.events.envelope import ReceivedEvent
from meshkit.events.tables import InboxRecord, utcnow

__all__ = ["Inbox"]

log = logging.getLogger(__name__)


class Inbox:
    """The handled event ids of one durable consumer.

    Args:
        consumer: The durable consumer's name; consumers sharing a database keep apart.
    """

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def handled(self, session: AsyncSession, ids: Collection[str]) -> set[str]:
        """Those of ``ids`` already handled."""
        query = select(InboxRecord.event_id).where(
            InboxRecord.consumer == self.consumer, InboxRecord.event_id.in_(set(ids))
        )
        return set((await session.scalars(query)).all())

    async def record(self, session: AsyncSession, events: Sequence[ReceivedEvent]) -> None:
        """Record ``events`` as handled in the transaction of ``session``.

        The handlers' pending ORM writes are flushed first, so that their errors surface
        here, inside the caller's savepoint, and not at commit.
        """
        if not events:
            return
        await session.flush()
        now = utcnow()
        await session.execute(
            insert(InboxRecord),
            [
                {
                    "consumer": self.consumer,
                    "event_id": event.id,
                    "event_type": event.type,
                    "processed_at": now,
                }
                for event in events
            ],
        )

    async def prune(self, database: Database, *, keep_seconds: float) -> None:
        """Forget events handled more than ``keep_seconds`` ago."""
        cutoff = utcnow() - timedelta(seconds=keep_seconds)
        async with database.transaction() as session:
            await session.execute(
                delete(InboxRecord).where(
                    InboxRecord.consumer == self.consumer, InboxRecord.processed_at < cutoff
                )
            )
