"""The outbox relay: publishes outbox rows to JetStream and marks them sent.

Each row goes out with ``Nats-Msg-Id`` = its event id, so JetStream drops a second copy
inside the dedupe window (a relay that crashed after publishing and before marking, or
two replicas racing), and with the trace context it was written with.

Rows reach the relay two ways:

- handed over by the outbox of this process when their transaction commits, so they
  leave at once without being read back;
- read from the table every ``outbox_poll_millis``: rows of a crashed run, of other
  processes, of a failed publish, or too many to hold in memory.

A row stays pending until JetStream acknowledged it, so nothing is lost. Marks are
written in batches, at most ``_MARK_DELAY_SECONDS`` behind; rows published but not yet
marked when the process dies are published again at the next start and dropped by
JetStream's dedupe window (consumers deduplicate on the event id in any case). While
publishing fails (NATS away, no stream) the relay retries from the table with
exponential backoff up to ``outbox_retry_max_millis``; a reconnect ends the backoff.
Rows go out in creation order, a batch at a time, concurrently within a batch.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, cast

from sqlalchemy import Table, bindparam, delete, select, update

from meshkit.db import Database
from meshkit.events._wakeup import Wakeup
from meshkit.events.metrics import EventMetrics
from meshkit.events.outbox import Outbox, OutboxRow
from meshkit.events.settings import EventSettings
from meshkit.events.tables import OutboxRecord, utcnow
from meshkit.tasks import cancel_and_wait

__all__ = ["MSG_ID", "OutboxRelay", "Outgoing", "StreamPublisher"]

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
_PRUNE_EVERY_SECONDS = 60.0
_MARK_DELAY_SECONDS = 0.2
_QUEUE_LIMIT = 10_000

_TABLE = cast(Table, OutboxRecord.__table__)  # a declarative class's table is a Table
_MARK_SENT = (
    update(_TABLE)
    .where(_TABLE.c.event_id == bindparam("id"))
    .values(
        sent_at=bindparam("now"), stream_sequence=bindparam("seq"), attempts=_TABLE.c.attempts + 1
    )
)
_MARK_FAILED = (
    update(_TABLE)
    .where(_TABLE.c.event_id == bindparam("id"))
    .values(last_error=bindparam("error"), attempts=_TABLE.c.attempts + 1)
)


@dataclass(frozen=True)
class Outgoing:
    """One message for JetStream."""

    subject: str
    data: bytes
    headers: Mapping[str, str]


class StreamPublisher(Protocol):
    """Publishes messages to JetStream and waits for their acknowledgements."""

    async def publish_batch(
        self, messages: Sequence[Outgoing], *, timeout_seconds: float
    ) -> list[int | str]:
        """Publish ``messages``; for each, its stream sequence or what went wrong."""
        ...


def _outgoing(row: OutboxRow) -> Outgoing:
    headers = {MSG_ID: row.event_id}
    if row.traceparent:
        headers["traceparent"] = row.traceparent
    if row.tracestate:
        headers["tracestate"] = row.tracestate
    return Outgoing(row.nats_subject, row.envelope, headers)


class OutboxRelay:
    """Moves outbox rows to JetStream in the background.

    Args:
        database: The plugin's database, holding the outbox table.
        publisher: Where rows go.
        settings: Batch size, poll interval, backoff, retention of sent rows.
        outbox: The outbox whose commits hand rows to the relay, if any.
        metrics: Where published events and failures are counted, if anywhere.
    """

    def __init__(
        self,
        database: Database,
        publisher: StreamPublisher,
        settings: EventSettings,
        *,
        outbox: Outbox | None = None,
        metrics: EventMetrics | None = None,
    ) -> None:
        self._db = database
        self._metrics = metrics
        self._publisher = publisher
        self._settings = settings
        self._wake = Wakeup()
        self._reconnected = Wakeup()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failures = 0
        self._queue: collections.deque[OutboxRow] = collections.deque()
        self._queued: set[str] = set()
        self._unmarked: dict[str, int] = {}
        self._inflight: set[str] = set()
        self._unmarked_since = 0.0
        self._poll_due = 0.0  # poll the table at once on start
        self._last_prune = 0.0
        # flush() may be called while the background task runs: one relays at a time.
        self._turn = asyncio.Lock()
        self._stop_handover = outbox.on_commit(self.committed) if outbox is not None else None

    @property
    def failing(self) -> bool:
        """Whether the last attempt to publish failed."""
        return self._failures > 0

    def committed(self, rows: Sequence[OutboxRow]) -> None:
        """Take rows just committed; publish them soon. Called inside ``commit()``."""
        if self._closed or self._failures:
            self._poll_due = 0.0  # the table has them; the next poll sends them
        elif len(self._queue) + len(rows) > _QUEUE_LIMIT:
            self._poll_due = 0.0
        else:
            # A poll may have found a row before its commit got here: it is on its way.
            fresh = [row for row in rows if not self._known(row.event_id)]
            self._queue.extend(fresh)
            self._queued.update(row.event_id for row in fresh)
        self._wake.set()

    def wake(self) -> None:
        """Look at the table now."""
        self._poll_due = 0.0
        self._wake.set()

    def reconnected(self) -> None:
        """NATS is back: end any backoff and publish now."""
        self._reconnected.set()
        self.wake()

    def start(self) -> None:
        """Start relaying in a background task. Safe to call twice."""
        if self._task is None and not self._closed:
            self._wake.bind()
            self._reconnected.bind()
            self._task = asyncio.create_task(self._run(), name="plugmesh-outbox-relay")

    async def flush(self) -> int:
        """Publish every row handed over or pending in the table, and mark them.

        Returns how many were published. Stops at the first batch with a failure,
        leaving the rest pending.
        """
        async with self._turn:
            self._poll_due = 0.0
            sent = await self._relay()
            await self._mark(force=True)
            return sent

    async def close(self, grace_seconds: float = 0.0) -> None:
        """Stop relaying, after one last flush of at most ``grace_seconds``. Safe to call twice.

        Rows still pending stay in the table for the next start.
        """
        if self._closed:
            return
        self._closed = True
        if self._stop_handover is not None:
            self._stop_handover()
        task, self._task = self._task, None
        await cancel_and_wait(task)
        flushing = grace_seconds > 0 and not self._failures
        try:
            # Even without a grace period, the sent marks are written (they are cheap and
            # spare a second publish of those rows at the next start).
            async with asyncio.timeout(grace_seconds if flushing else _MARK_DELAY_SECONDS * 5):
                if flushing:
                    await self.flush()
                else:
                    async with self._turn:
                        await self._mark(force=True)
        except TimeoutError:
            log.warning("outbox not flushed within the grace period; rows stay pending")
        except Exception:
            log.exception("last flush of the outbox failed; rows stay pending")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                async with self._turn:
                    await self._relay()
                    await self._mark()
            except Exception:
                # The database failed: the rows are still there, try again after a pause.
                log.exception("reading or marking the outbox failed")
                self._failures += 1
            await self._prune()
            if self._failures:
                await self._back_off()
                continue
            now = time.monotonic()
            timeout = self._poll_due - now
            if self._unmarked:
                timeout = min(timeout, self._unmarked_since + _MARK_DELAY_SECONDS - now)
            await _wait(self._wake, max(timeout, 0.0))

    async def _back_off(self) -> None:
        ceiling = self._settings.outbox_retry_max_millis / 1000
        delay = min(ceiling, 0.1 * 2 ** min(self._failures - 1, 20))
        self._reconnected.clear()
        # Full jitter keeps replicas from retrying in step; a reconnect ends the wait.
        await _wait(self._reconnected, random.uniform(delay / 2, delay))
        self._poll_due = 0.0

    async def _relay(self) -> int:
        """Publish handed-over rows, then the table's when a poll is due; return the count."""
        sent = 0
        batch = self._settings.outbox_batch
        while self._queue:
            rows = [self._queue.popleft() for _ in range(min(batch, len(self._queue)))]
            self._queued.difference_update(row.event_id for row in rows)
            published, complete = await self._publish_batch(rows)
            sent += published
            if not complete:
                return sent
        if time.monotonic() < self._poll_due:
            return sent
        while True:
            rows = await self._pending(batch)
            published, complete = await self._publish_batch(rows)
            sent += published
            if not complete or len(rows) < batch:
                break
        self._poll_due = time.monotonic() + self._settings.outbox_poll_millis / 1000
        return sent

    async def _pending(self, limit: int) -> list[OutboxRow]:
        # Rows handed over, in flight or published and not yet marked are not pending.
        margin = len(self._unmarked) + len(self._queued) + len(self._inflight)
        query = (
            select(
                OutboxRecord.event_id,
                OutboxRecord.event_type,
                OutboxRecord.nats_subject,
                OutboxRecord.envelope,
                OutboxRecord.traceparent,
                OutboxRecord.tracestate,
                OutboxRecord.created_at,
            )
            .where(OutboxRecord.sent_at.is_(None))
            .order_by(OutboxRecord.event_id)
            .limit(limit + margin)
        )
        async with self._db.read() as session:
            rows = [OutboxRow(*row) for row in (await session.execute(query)).all()]
        # Filtered after the query: a commit may have handed rows over meanwhile.
        return [row for row in rows if not self._known(row.event_id)][:limit]

    def _known(self, event_id: str) -> bool:
        return event_id in self._queued or event_id in self._unmarked or event_id in self._inflight

    async def _publish_batch(self, rows: Sequence[OutboxRow]) -> tuple[int, bool]:
        """Publish ``rows`` concurrently. Returns (published, whether all were)."""
        if not rows:
            self._failures = 0
            return 0, True
        self._inflight = {row.event_id for row in rows}
        try:
            results = await self._publisher.publish_batch(
                [_outgoing(row) for row in rows],
                timeout_seconds=self._settings.publish_timeout_seconds,
            )
        finally:
            self._inflight = set()
        failed = []
        metrics = self._metrics
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, int):
                if not self._unmarked:
                    self._unmarked_since = time.monotonic()
                self._unmarked[row.event_id] = result
                if metrics is not None:
                    metrics.published(row.event_type).inc()
            else:
                failed.append({"id": row.event_id, "error": result[:1000]})
                if metrics is not None:
                    metrics.publish_failures(row.event_type).inc()
        if not failed:
            self._failures = 0
            return len(rows), True
        self._failures += 1
        self._queue.clear()  # the table holds them all; retry from there after the backoff
        self._queued.clear()
        log.warning(
            "publishing events failed; they stay in the outbox",
            extra={
                "failed": len(failed),
                "sent": len(rows) - len(failed),
                "error": failed[0]["error"],
            },
        )
        async with self._db.transaction() as session:
            await session.execute(_MARK_FAILED, failed)
        return len(rows) - len(failed), False

    async def _mark(self, *, force: bool = False) -> None:
        """Write the sent marks, when enough are waiting or the oldest waited long enough."""
        if not self._unmarked:
            return
        due = self._unmarked_since + _MARK_DELAY_SECONDS <= time.monotonic()
        if not (force or due or len(self._unmarked) >= self._settings.outbox_batch):
            return
        marks, self._unmarked = self._unmarked, {}
        now = utcnow()
        try:
            async with self._db.transaction() as session:
                await session.execute(
                    _MARK_SENT, [{"id": key, "seq": seq, "now": now} for key, seq in marks.items()]
                )
        except BaseException:
            self._unmarked = marks | self._unmarked  # still published; mark them next time
            raise

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
