"""The event bus's tables in a plugin's own database: the outbox and the inbox.

``metadata`` holds both; the revisions of ``MIGRATIONS`` make them (the
:class:`~meshkit.events.bus.EventBus` applies them at start, with the version table
``alembic_version_events``). Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, Index, Integer, LargeBinary, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.clock import SYSTEM_CLOCK
from meshkit.db import naive_utc
from meshkit.migrations import Migrations

__all__ = ["MIGRATIONS", "InboxRecord", "OutboxRecord", "metadata", "utcnow"]

metadata = MetaData()

MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_events", metadata)


def utcnow() -> dt.datetime:
    """Now by the system clock, as the naive UTC datetime these tables store."""
    return naive_utc(SYSTEM_CLOCK.now())


class _Base(DeclarativeBase):
    metadata = metadata


class OutboxRecord(_Base):
    """An event waiting to be published, or published (``sent_at`` set).

    Written in the transaction that made the change the event is about; the relay
    publishes pending rows in event id order and marks them sent. Event ids are UUIDv7,
    so that is the order in which this process created them. The key is made here, not
    by the database, so a transaction's rows go in one batched INSERT (SQLite cannot
    return generated keys of a batch in order, which would cost one INSERT per row).
    """

    __tablename__ = "plugmesh_outbox"
    __table_args__ = (
        # Serves both "pending in order" (sent_at IS NULL ORDER BY event_id) and pruning.
        Index("ix_plugmesh_outbox_sent_at_event_id", "sent_at", "event_id"),
    )

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(255))
    nats_subject: Mapped[str] = mapped_column(String(255))
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    traceparent: Mapped[str | None] = mapped_column(String(64))
    tracestate: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    stream_sequence: Mapped[int | None] = mapped_column(BigInteger)


class InboxRecord(_Base):
    """An event a consumer has handled; written in the handler's own transaction."""

    __tablename__ = "plugmesh_inbox"

    consumer: Mapped[str] = mapped_column(String(255), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(255))
    processed_at: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
