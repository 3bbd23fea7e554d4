"""The outbox relay: publishes pending outbox rows to JetStream and marks them sent.

Each row goes out with ``Nats-Msg-Id`` = its event id, so JetStream drops a second copy
inside the dedupe window (a relay that crashed after publishing and before marking, or
two replicas racing), and with the trace context it was written with. The relay runs

- when a transaction with events commits (the outbox wakes it),
- when the NATS connection comes back (the bus wakes it),
- every ``outbox_poll_millis`` otherwise, for rows other processes or a crash left.

While publishing fails (NATS away, no stream) it retries with exponential backoff up to
``outbox_retry_max_millis``; a row stays pending until JetStream acknowledged it, so
nothing is lost. Rows are published in event id (creation) order, a batch at a time, concurrently
within a batch: order holds unless a publish in a batch fails and is retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from sqlalchemy import delete, select, update

from meshkit.db import Database
from meshkit.events._tasks import cancel_and_wait
from meshkit.events.outbox import Outbox, Wakeup
from meshkit.events.settings import EventSettings
from meshkit.events.tables import OutboxRecord, utcnow

__all__ = ["MSG_ID", "OutboxRelay", "StreamPublisher"]

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
_PRUNE_EVERY_SECONDS = 60.0


class StreamPublisher(Protocol):
    """Publishes one message to JetStream and waits for its acknowledgement."""

    async def publish(
        self, subject: str, data: bytes, *, headers: Mapping[str, str], timeout_seconds: float
    ) -> int:
        """Publish; return the stream sequence. Raises on any failure."""
        ...


@dataclass(frozen=True)
class _Row:
    event_id: str
    subject: str
    envelope: bytes
    traceparent: str | None
    tracestate: str | None
    attempts: int

    def headers(self) -> dict[str, str]:
        headers = {MSG_ID: self.event_id}
        if self.traceparent:
            headers["traceparent"] = self.traceparent
        if self.tracestate:
            headers["tracestate"] = self.tracestate
        return headers


class OutboxRelay:
    """Moves outbox rows to JetStream in the background.

    Args:
        database: The plugin's database, holding the outbox table.
        publisher: Where rows go.
        settings: Batch size, poll interval, backoff, retention of sent rows.
        outbox: The outbox whose commits wake the relay, if any.
    """

    def __init__(
        self,
        database: Database,
        publisher: StreamPublisher,
        settings: EventSettings,
        *,
        outbox: Outbox | None = None,
    ) -> None:
        self._db = database
        self._publisher = publisher
        self._settings = settings
        self._wake = Wakeup()
        self._reconnected = Wakeup()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failures = 0
        self._last_prune = 0.0
        if outbox is not None:
            outbox.on_commit(self.wake)

    @property
    def failing(self) -> bool:
        """Whether the last attempt to publish failed."""
        return self._failures > 0

    def wake(self) -> None:
        """Look for pending rows now."""
        self._wake.set()

    def reconnected(self) -> None:
        """NATS is back: end any backoff and publish now."""
        self._reconnected.set()
        self._wake.set()

    def start(self) -> None:
        """Start relaying in a background task. Safe to call twice."""
        if self._task is None and not self._closed:
            self._wake.bind()
            self._reconnected.bind()
            self._task = asyncio.create_task(self._run(), name="plugmesh-outbox-relay")

    async def flush(self) -> int:
        """Publish every row pending now; return how many were sent.

        Stops at the first batch with a failure, leaving the rest pending.
        """
        sent = 0
        while True:
            batch_sent, complete = await self._relay_batch()
            sent += batch_sent
            if not complete:
                return sent

    async def close(self, grace_seconds: float = 0.0) -> None:
        """Stop relaying, after one last flush of at most ``grace_seconds``. Safe to call twice.

        Rows still pending stay in the table for the next start.
        """
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if grace_seconds > 0:
            try:
                async with asyncio.timeout(grace_seconds):
                    await self.flush()
            except TimeoutError:
                log.warning("outbox not flushed within the grace period; rows stay pending")
            except Exception:
                log.exception("last flush of the outbox failed; rows stay pending")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                # The database failed: the rows are still there, try again after a pause.
                log.exception("reading or marking the outbox failed")
                self._failures += 1
            await self._prune()
            if self._failures:
                await self._back_off()
            else:
                await _wait(self._wake, self._settings.outbox_poll_millis / 1000)

    async def _back_off(self) -> None:
        ceiling = self._settings.outbox_retry_max_millis / 1000
        delay = min(ceiling, 0.1 * 2 ** min(self._failures - 1, 20))
        self._reconnected.clear()
        # Full jitter keeps replicas from retrying in step; a reconnect ends the wait.
        await _wait(self._reconnected, random.uniform(delay / 2, delay))

    async def _relay_batch(self) -> tuple[int, bool]:
        """Publish one batch. Returns (sent, whether to go on with the next batch)."""
        rows = await self._pending(self._settings.outbox_batch)
        if not rows:
            self._failures = 0
            return 0, False
        results = await asyncio.gather(*(self._publish(row) for row in rows))
        sent = [(row, result) for row, result in zip(rows, results, strict=True)]
        ok = [(row, seq) for row, seq in sent if isinstance(seq, int)]
        failed = [(row, error) for row, error in sent if isinstance(error, str)]
        await self._mark(ok, failed)
        if failed:
            self._failures += 1
            log.warning(
                "publishing events failed; they stay in the outbox",
                extra={"failed": len(failed), "sent": len(ok), "error": failed[0][1]},
            )
            return len(ok), False
        self._failures = 0
        return len(ok), len(rows) == self._settings.outbox_batch

    async def _pending(self, limit: int) -> Sequence[_Row]:
        query = (
            select(
                OutboxRecord.event_id,
                OutboxRecord.nats_subject,
                OutboxRecord.envelope,
                OutboxRecord.traceparent,
                OutboxRecord.tracestate,
                OutboxRecord.attempts,
            )
            .where(OutboxRecord.sent_at.is_(None))
            .order_by(OutboxRecord.event_id)
            .limit(limit)
        )
        async with self._db.read() as session:
            return [_Row(*row) for row in (await session.execute(query)).all()]

    async def _publish(self, row: _Row) -> int | str:
        """The stream sequence, or the error as text."""
        try:
            return await self._publisher.publish(
                row.subject,
                row.envelope,
                headers=row.headers(),
                timeout_seconds=self._settings.publish_timeout_seconds,
            )
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"[:1000]

    async def _mark(
        self, ok: Sequence[tuple[_Row, int]], failed: Sequence[tuple[_Row, str]]
    ) -> None:
        now = utcnow()
        sent = [
            {
                "event_id": row.event_id,
                "sent_at": now,
                "stream_sequence": seq,
                "attempts": row.attempts + 1,
            }
            for row, seq in ok
        ]
        errors = [
            {"event_id": row.event_id, "attempts": row.attempts + 1, "last_error": error}
            for row, error in failed
        ]
        async with self._db.transaction() as session:
            # Bulk UPDATE by primary key: one executemany per shape of row.
            for rows in (sent, errors):
                if rows:
                    await session.execute(update(OutboxRecord), rows)

    async def _prune(self) -> None:
        keep = self._settings.outbox_keep_sent_seconds
        now = time.monotonic()
        if keep <= 0 or now - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        cutoff = utcnow() - timedelta(seconds=keep)
        try:
            async with self._db.transaction() as session:
                await session.execute(
                    delete(OutboxRecord).where(
                        OutboxRecord.sent_at.is_not(None), OutboxRecord.sent_at < cutoff
                    )
                )
        except Exception:
            log.exception("pruning sent outbox rows failed")


async def _wait(wakeup: Wakeup, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await wakeup.wait()
