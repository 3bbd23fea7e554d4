"""Shared pieces of the event bus tests: a consumer's store, a publisher's state, how long
to wait."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from sqlalchemy import ForeignKey, Integer, String, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.db import Database
from meshkit.events import EventSettings, ReceivedEvent, build_event, subject_of
from meshkit.events.relay import MSG_ID
from meshkit.events.tables import OutboxRecord
from plugmesh.events.v1 import event_pb2, user_events_pb2
from plugmesh.users.v1 import users_pb2

#: How long a test waits for something asynchronous (generous: machines get busy).
WAIT_SECONDS = 30.0

#: Settings that retry quickly, so tests of failures finish in seconds.
FAST = EventSettings(
    retry_initial_millis=50,
    retry_max_millis=200,
    outbox_poll_millis=200,
    outbox_retry_max_millis=300,
    publish_timeout_seconds=2,
    ack_wait_seconds=5,
)


def fast(**changes: object) -> EventSettings:
    """:data:`FAST` with some fields changed."""
    return replace(FAST, **changes)  # type: ignore[arg-type]  # field values checked by __post_init__


class Base(DeclarativeBase):
    pass


class Seen(Base):
    """What a test consumer stored: one row per handled event, duplicates included."""

    __tablename__ = "seen"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))


class Change(Base):
    """A publisher's state change; each one publishes an event."""

    __tablename__ = "changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(64))


class Note(Base):
    """A second row a handler writes, to see that a failed handler's writes roll back."""

    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    seen_id: Mapped[int | None] = mapped_column(ForeignKey("seen.id"))
    event_id: Mapped[str] = mapped_column(String(64))


async def record(event: ReceivedEvent, session: AsyncSession) -> None:
    """A handler that stores every event it gets."""
    session.add(Seen(event_id=event.id, event_type=event.type, subject=event.envelope.subject))


def user_created(user_id: str) -> user_events_pb2.UserCreated:
    """A ``user.created`` payload."""
    return user_events_pb2.UserCreated(user=users_pb2.User(user_id=user_id))


async def seen_counts(db: Database) -> tuple[int, int]:
    """(rows, distinct event ids) in a consumer's store."""
    async with db.read() as session:
        total = await session.scalar(select(func.count()).select_from(Seen))
        distinct = await session.scalar(select(func.count(func.distinct(Seen.event_id))))
    return int(total or 0), int(distinct or 0)


async def pending_outbox(db: Database) -> int:
    """Outbox rows not yet sent."""
    async with db.read() as session:
        count = await session.scalar(
            select(func.count()).select_from(OutboxRecord).where(OutboxRecord.sent_at.is_(None))
        )
    return int(count or 0)


async def publish_directly(
    js: JetStreamContext, count: int, *, prefix: str = "u"
) -> list[event_pb2.Event]:
    """Publish ``count`` user.created events straight to JetStream (no outbox)."""
    events = [
        build_event(user_created(f"{prefix}{i}"), source="/plugmesh/test", subject=f"users/{i}")
        for i in range(count)
    ]
    acks = [
        await js.publish_async(
            subject_of(event.type), event.SerializeToString(), headers={MSG_ID: event.id}
        )
        for event in events
    ]
    await asyncio.gather(*acks)
    return events


async def consumer_settled(js: JetStreamContext, stream: str, consumer: str) -> bool:
    """Whether a consumer has nothing pending and nothing awaiting an ack."""
    info = await js.consumer_info(stream, consumer)
    return bool(info.num_pending == 0 and info.num_ack_pending == 0)


async def connect(url: str) -> Client:
    """A plain NATS client for a test."""
    return await nats.connect(url, name="plugmesh-test")
