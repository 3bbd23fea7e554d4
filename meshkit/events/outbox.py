"""The transactional outbox: an event is a row written in the caller's own transaction.

::

    async with db.transaction() as session:
        session.add(UserRow(...))
        outbox.add(session, UserCreated(...), subject="users/u-1")

The row commits or rolls back with the state change, so an event exists exactly when
the change does; the relay (:mod:`meshkit.events.relay`) publishes it afterwards.

``add`` only builds the row; the transaction's rows are inserted in one statement when
it commits (an ORM object per event would cost more than the rest of publishing). Rows
added inside a savepoint that rolls back are dropped with it, like the savepoint's other
writes. Right after the commit the outbox hands the rows to the relay of this process,
so an event leaves within milliseconds without being read back; rows the relay never
got this way (a crash, another process) it finds by polling the table.

An event carries the trace context it was added in. With traces on (``spans``, see
:mod:`meshkit.spans`) adding it is a producer span, the child of that context, and the
event carries the span's context: its consumers' spans are the span's children.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from google.protobuf import message
from sqlalchemy import Table, insert
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from meshkit.events.envelope import build_event, subject_of
from meshkit.events.errors import EventError
from meshkit.events.tables import OutboxRecord, utcnow
from meshkit.spans import SpanKind, SpanRecorder
from meshkit.tracing import TraceContext, current_trace, new_trace
from plugmesh.events.v1 import event_pb2

__all__ = ["Outbox", "OutboxRow"]

_TABLE = cast(Table, OutboxRecord.__table__)  # a declarative class's table is a Table
_WATCHED = "plugmesh_outbox_watched"
_ADDED = "plugmesh_outbox_added"  # [(transaction it was added in, row)] not yet inserted
_INSERTED = "plugmesh_outbox_inserted"  # rows inserted by the commit under way


@dataclass(frozen=True)
class OutboxRow:
    """One event as the outbox stores it and the relay sends it."""

    event_id: str
    event_type: str
    nats_subject: str
    envelope: bytes
    traceparent: str | None
    tracestate: str | None
    created_at: dt.datetime

    def values(self) -> dict[str, Any]:
        """The column values of a new row."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "nats_subject": self.nats_subject,
            "envelope": self.envelope,
            "traceparent": self.traceparent,
            "tracestate": self.tracestate,
            "created_at": self.created_at,
            "attempts": 0,
        }


class Outbox:
    """Writes events as outbox rows of the caller's transaction.

    Args:
        source: The CloudEvents source of this process, ``/plugmesh/<service>``.

    Attributes:
        spans: Where the events' producer spans go; none when ``None`` (traces off).
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.spans: SpanRecorder | None = None
        self._on_commit: list[Callable[[Sequence[OutboxRow]], None]] = []

    def on_commit(self, callback: Callable[[Sequence[OutboxRow]], None]) -> Callable[[], None]:
        """Call ``callback`` with the rows a transaction committed, right after its commit.

        It runs inside ``commit()``; it must not block or touch the session. Returns what
        stops the calls.
        """
        self._on_commit.append(callback)

        def stop() -> None:
            if callback in self._on_commit:
                self._on_commit.remove(callback)

        return stop

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
        """Add an envelope built elsewhere (see :func:`~meshkit.events.envelope.build_event`).

        Raises:
            EventError: The session has no transaction and cannot begin one.
        """
        subject = subject_of(event.type)
        if self.spans is not None:
            trace = _published(self.spans, trace or current_trace(), event, subject)
        else:
            trace = trace or current_trace() or new_trace()
        row = OutboxRow(
            event_id=event.id,
            event_type=event.type,
            nats_subject=subject,
            envelope=event.SerializeToString(),
            traceparent=trace.traceparent,
            tracestate=trace.tracestate,
            created_at=utcnow(),
        )
        sync = session.sync_session if isinstance(session, AsyncSession) else session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        if transaction is None:
            if not sync.autobegin:
                raise EventError("outbox: the session is in no transaction; begin one first")
            transaction = sync.begin()
        self._watch(sync)
        sync.info.setdefault(_ADDED, []).append((transaction, row))

    def _watch(self, session: Session) -> None:
        if session.info.get(_WATCHED) is self:
            return
        session.info[_WATCHED] = self
        sa_event.listen(session, "before_commit", self._before_commit)
        sa_event.listen(session, "after_commit", self._after_commit)
        sa_event.listen(session, "after_soft_rollback", self._after_rollback)

    def _before_commit(self, session: Session) -> None:
        if session.in_nested_transaction():
            return  # a savepoint is released: its rows stay tied to it until the real commit
        added: list[tuple[SessionTransaction, OutboxRow]] = session.info.pop(_ADDED, [])
        if not added:
            return
        rows = [row for _, row in added]
        session.execute(insert(_TABLE), [row.values() for row in rows])
        session.info.setdefault(_INSERTED, []).extend(rows)

    def _after_commit(self, session: Session) -> None:
        rows: list[OutboxRow] = session.info.pop(_INSERTED, [])
        if rows:
            for callback in self._on_commit:
                callback(rows)

    def _after_rollback(self, session: Session, rolled_back: SessionTransaction) -> None:
        if rolled_back.parent is None:
            session.info.pop(_ADDED, None)
            session.info.pop(_INSERTED, None)
            return
        added: list[tuple[SessionTransaction, OutboxRow]] = session.info.get(_ADDED, [])
        added[:] = [(t, row) for t, row in added if not _within(t, rolled_back)]


def _published(
    spans: SpanRecorder, parent: TraceContext | None, event: event_pb2.Event, subject: str
) -> TraceContext:
    """The producer span of an event (it ends here: the relay sends the event later)."""
    attributes = {
        "messaging.system": "nats",
        "messaging.operation.type": "create",
        "messaging.destination.name": subject,
        "messaging.message.id": event.id,
    }
    span = spans.start(f"publish {subject}", SpanKind.PRODUCER, parent, attributes=attributes)
    span.end()
    return span.trace


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False
