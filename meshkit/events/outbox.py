"""The transactional outbox: an event is a row written in the caller's own transaction.

::

    async with db.transaction() as session:
        session.add(UserRow(...))
        outbox.add(session, UserCreated(...), subject="users/u-1")

The row commits or rolls back with the state change, so an event exists exactly when
the change does; the relay (:mod:`meshkit.events.relay`) publishes it afterwards. When
the session commits, the outbox hands the committed rows to the relay of this process,
so an event leaves within milliseconds, without the relay reading it back; rows the
relay never got this way (a crash, another process) it finds by polling the table.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Sequence

from google.protobuf import message
from sqlalchemy import event as sa_event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from meshkit.events.envelope import build_event, subject_of
from meshkit.events.tables import OutboxRecord, utcnow
from meshkit.events.tracecontext import TraceContext, current_trace, new_trace
from plugmesh.events.v1 import event_pb2

__all__ = ["Outbox", "Wakeup"]

_WATCHED = "plugmesh_outbox_watched"
_ROWS = "plugmesh_outbox_rows"


class Wakeup:
    """An ``asyncio.Event`` that may be set from any thread."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: int | None = None

    def bind(self) -> None:
        """Remember the running loop: :meth:`set` from other threads goes through it."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def set(self) -> None:
        """Wake the waiter."""
        if self._loop is None or threading.get_ident() == self._thread:
            self._event.set()
        elif not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._event.set)

    def clear(self) -> None:
        """Forget earlier wake-ups."""
        self._event.clear()

    def is_set(self) -> bool:
        """Whether a wake-up is pending."""
        return self._event.is_set()

    async def wait(self) -> None:
        """Wait for a wake-up."""
        await self._event.wait()


class Outbox:
    """Writes events as outbox rows of the caller's transaction.

    Args:
        source: The CloudEvents source of this process, ``/plugmesh/<service>``.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self._on_commit: list[Callable[[Sequence[OutboxRecord]], None]] = []

    def on_commit(self, callback: Callable[[Sequence[OutboxRecord]], None]) -> None:
        """Call ``callback`` with the rows a transaction committed, right after its commit.

        It runs inside ``commit()``; it must not block or touch the session.
        """
        self._on_commit.append(callback)

    def add(
        self,
        session: AsyncSession | Session,
        payload: message.Message,
        *,
        subject: str = "",
        time: dt.datetime | None = None,
        trace: TraceContext | None = None,
    ) -> event_pb2.Event:
        """Add an event about ``subject`` to the transaction of ``session``.

        Args:
            session: The session of the transaction that makes the change.
            payload: The payload, a message marked with ``(plugmesh.options.v1.event)``.
            subject: The resource the event is about, for example ``users/u-1``.
            time: When the change happened; now by default.
            trace: The trace context to send along; default: the current one, else a new
                trace.

        Returns:
            The envelope, with its id.

        Raises:
            NotAnEventPayload: ``payload`` is not an event payload.
        """
        event = build_event(payload, source=self.source, subject=subject, time=time)
        self.add_event(session, event, trace=trace)
        return event

    def add_event(
        self,
        session: AsyncSession | Session,
        event: event_pb2.Event,
        *,
        trace: TraceContext | None = None,
    ) -> None:
        """Add an envelope built elsewhere (see :func:`~meshkit.events.envelope.build_event`)."""
        trace = trace or current_trace() or new_trace()
        record = OutboxRecord(
            event_id=event.id,
            event_type=event.type,
            nats_subject=subject_of(event.type),
            envelope=event.SerializeToString(),
            traceparent=trace.traceparent,
            tracestate=trace.tracestate,
            created_at=utcnow(),
            attempts=0,
        )
        session.add(record)
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        sync.info.setdefault(_ROWS, []).append(record)
        self._watch(sync)

    def _watch(self, session: Session) -> None:
        if session.info.get(_WATCHED) is self:
            return
        session.info[_WATCHED] = self
        sa_event.listen(session, "after_commit", self._committed)
        sa_event.listen(session, "after_rollback", self._rolled_back)

    def _committed(self, session: Session) -> None:
        rows: list[OutboxRecord] = session.info.pop(_ROWS, [])
        # A row added in a savepoint that rolled back is transient again: it was not committed.
        committed = [row for row in rows if sa_inspect(row).has_identity]
        if committed:
            for callback in self._on_commit:
                callback(committed)

    def _rolled_back(self, session: Session) -> None:
        session.info.pop(_ROWS, None)
