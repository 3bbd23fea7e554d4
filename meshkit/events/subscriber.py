"""Subscribing: a durable JetStream pull consumer feeding a handler, exactly once in effect.

A handler gets the event and a session of the consumer's own database, in a transaction
that also records the event id in the inbox table::

    async def on_user_created(event: ReceivedEvent, session: AsyncSession) -> None:
        session.add(AuditRow(...))

Delivery is at least once; the inbox makes the effect exactly once: an event whose id
the inbox holds is acknowledged without calling the handler, and the inbox row commits
with the handler's writes or not at all. The message is acknowledged only after that
commit. A handler that raises is retried after a growing delay (``nak`` with a delay);
after ``max_attempts`` deliveries the event goes to the dead-letter subject with the
error, and the others keep flowing.

Events are handled a batch per transaction. A batch runs without savepoints first; if
any handler raises, the batch is rolled back and run again with a savepoint around each
handler, so one failure rolls back only its own event. A handler may therefore run more
than once for an event, but only one run's writes ever commit. A subscription may give a
cheaper ``batch_handler`` for the first pass: one allowed to fail the batch where the
handler would cope (the audit log skips looking an event id up and lets a unique index
catch a repeat), since the second pass runs the handler itself.

A handler runs in the event's trace. With traces on (:mod:`meshkit.spans`) each run is a
consumer span, the child of the span that published the event, and its context is the
handler's; a run in a first pass that was rolled back is a span too, as it ran.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Protocol

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db import Database
from meshkit.events._puller import Puller, PullError, delivery_of
from meshkit.events.deadletters import publish_dead_letter
from meshkit.events.envelope import ReceivedEvent, parse_event, subject_of, type_of_subject
from meshkit.events.errors import EnvelopeError, EventBusStateError, EventError
from meshkit.events.inbox import Inbox
from meshkit.events.metrics import EventMetrics
from meshkit.events.relay import MSG_ID
from meshkit.events.settings import EventSettings
from meshkit.events.streams import EVENTS_STREAM
from meshkit.spans import SpanKind, SpanRecorder
from meshkit.tasks import cancel_and_wait
from meshkit.tracing import TraceContext, use_trace

__all__ = ["EventHandler", "Subscription", "SubscriptionStatus", "filter_subject"]

log = logging.getLogger(__name__)

_CONSUMER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_PRUNE_EVERY_SECONDS = 60.0


class EventHandler(Protocol):
    """Handles one event inside the transaction that records it as handled."""

    async def __call__(self, event: ReceivedEvent, session: AsyncSession) -> None:
        """Apply ``event``; raise to have it retried (and dead-lettered in the end)."""
        ...


class SubscriptionStatus(enum.Enum):
    """Lifecycle of a :class:`Subscription`."""

    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


def filter_subject(pattern: str) -> str:
    """The NATS subject of an event type pattern: ``user.*`` → ``plugmesh.events.user.*``.

    Raises:
        ValueError: The pattern is not dot-separated tokens, ``*`` or a final ``>``.
    """
    tokens = pattern.split(".")
    for index, token in enumerate(tokens):
        last = index == len(tokens) - 1
        if token == "*" or (token == ">" and last) or _TOKEN.match(token):
            continue
        raise ValueError(
            f"event pattern {pattern!r}: token {token!r} is not a name, '*' or a final '>'"
        )
    return subject_of(pattern)


@dataclass
class _Item:
    msg: Msg
    event: ReceivedEvent


class Subscription:
    """One durable consumer of the event stream and the task that feeds its handler.

    Args:
        nc: A connected NATS client.
        database: The consumer's own database (handler writes and the inbox).
        consumer: The durable consumer's name, stable across restarts
            (letters, digits, ``-`` and ``_``).
        pattern: The event types, for example ``user.*`` or ``>``.
        handler: What to do with each event.
        batch_handler: What to do with each event in the first pass of a batch, the one
            without savepoints; default: ``handler``.
        settings: Attempts, backoff, batch size, ack wait.
        fetch_wait_seconds: How long one fetch waits for events; bounds how long a
            drain waits for an idle subscription.
        metrics: Where consumed, redelivered and dead-lettered events are counted.
        spans: Where the handlers' spans go; none when ``None`` (traces off).
    """

    def __init__(
        self,
        nc: Client,
        database: Database,
        *,
        consumer: str,
        pattern: str,
        handler: EventHandler,
        batch_handler: EventHandler | None = None,
        settings: EventSettings,
        fetch_wait_seconds: float = 0.5,
        metrics: EventMetrics | None = None,
        spans: SpanRecorder | None = None,
    ) -> None:
        if not _CONSUMER_NAME.match(consumer):
            raise ValueError(
                f"consumer name {consumer!r} must be 1-200 letters, digits, '-' or '_'"
            )
        self.consumer = consumer
        self.pattern = pattern
        self.subject = filter_subject(pattern)
        self.status = SubscriptionStatus.NEW
        self._nc = nc
        self._js = nc.jetstream(timeout=settings.publish_timeout_seconds)
        self._db = database
        self._handler = handler
        self._batch_handler = batch_handler or handler
        self._settings = settings
        self._fetch_wait = fetch_wait_seconds
        self._puller: Puller | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._last_prune = 0.0
        self._inbox = Inbox(consumer)
        self._metrics = metrics
        self._spans = spans

    def consumer_config(self) -> ConsumerConfig:
        """The durable consumer's configuration.

        ``max_deliver`` is unlimited: the subscriber itself bounds attempts (a handler
        that failed ``max_attempts`` times is dead-lettered), so an event redelivered
        because its consumer crashed is never dropped by the server.
        """
        return ConsumerConfig(
            name=self.consumer,
            durable_name=self.consumer,
            description=f"plugmesh subscriber {self.consumer} of {self.pattern}",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=self._settings.ack_wait_seconds,
            max_deliver=-1,
            filter_subject=self.subject,
            max_ack_pending=max(1_000, 4 * self._settings.fetch_batch),
        )

    async def start(self) -> None:
        """Create or update the durable consumer and start handling. Safe to call twice.

        Raises:
            EventError: The consumer could not be created.
            EventBusStateError: The subscription was closed.
        """
        if self.status is SubscriptionStatus.RUNNING:
            return
        if self.status is not SubscriptionStatus.NEW:
            raise EventBusStateError(f"subscription {self.consumer} is {self.status.value}")
        await self._ensure_consumer()
        self._puller = Puller(self._nc, EVENTS_STREAM, self.consumer)
        await self._puller.start()
        self.status = SubscriptionStatus.RUNNING
        self._task = asyncio.create_task(self._run(), name=f"plugmesh-subscriber-{self.consumer}")

    async def drain(self, grace_seconds: float = 5.0) -> None:
        """Stop fetching, let the batch in hand finish, then stop. Safe to call twice.

        After ``grace_seconds`` the batch is cancelled: its transaction rolls back and its
        events are redelivered.
        """
        if self.status in (SubscriptionStatus.NEW, SubscriptionStatus.CLOSED):
            self.status = SubscriptionStatus.CLOSED
            return
        self.status = SubscriptionStatus.DRAINING
        self._stopping.set()
        task = self._task
        if task is not None and not task.done():
            done, _ = await asyncio.wait([task], timeout=grace_seconds)
            if not done:
                log.warning("subscriber did not drain in time", extra={"consumer": self.consumer})
        await self.close()

    async def close(self) -> None:
        """Stop at once; events in hand are redelivered. Safe to call twice."""
        self._stopping.set()
        task, self._task = self._task, None
        await cancel_and_wait(task)
        puller, self._puller = self._puller, None
        self.status = SubscriptionStatus.CLOSED
        if puller is not None:
            try:
                await puller.close()
            except nats.errors.Error as exc:
                log.debug("releasing the subscription failed: %s", exc)

    async def _ensure_consumer(self) -> None:
        try:
            await self._js.add_consumer(EVENTS_STREAM, config=self.consumer_config())
        except APIError as exc:
            raise EventError(
                f"consumer {self.consumer} on {self.subject} cannot be created: {exc.description}"
            ) from exc

    async def _run(self) -> None:
        assert self._puller is not None
        failures = 0
        while not self._stopping.is_set():
            try:
                msgs = await self._puller.fetch(self._settings.fetch_batch, self._fetch_wait)
                if msgs:
                    await self._handle(msgs)
                else:
                    await self._prune()
                failures = 0
            except Exception as exc:
                # Whatever failed (NATS away, a refused pull, the database), the events in
                # hand were not acknowledged and come back; the loop must live on.
                failures += 1
                log.warning(
                    "consuming events failed; retrying",
                    extra={"consumer": self.consumer, "error": _describe(exc)},
                )
                await self._pause(min(5.0, 0.1 * 2 ** min(failures, 6)))
                if isinstance(exc, PullError | APIError):
                    await self._recreate_consumer()

    async def _handle(self, msgs: Sequence[Msg]) -> None:
        items: list[_Item] = []
        for msg in msgs:
            attempt, sequence = delivery_of(msg)
            try:
                envelope = parse_event(msg.data)
            except EnvelopeError as exc:
                headers = msg.headers or {}
                await self._dead_letter(
                    msg,
                    event_id=headers.get(MSG_ID) or f"seq-{sequence}",
                    event_type=type_of_subject(msg.subject),
                    error=f"EnvelopeError: {exc}",
                )
                continue
            event = ReceivedEvent(
                envelope=envelope,
                subject=msg.subject,
                stream_sequence=sequence,
                attempt=attempt,
                trace=TraceContext.from_headers(msg.headers),
            )
            if event.attempt > 1 and self._metrics is not None:
                self._metrics.redelivered(self.consumer, event.type).inc()
            items.append(_Item(msg, event))
        if not items:
            return
        try:
            errors = await self._apply(items)
        except Exception:
            # The database failed, not a handler: retry the batch, but never dead-letter it.
            log.exception(
                "a batch of events could not be stored; it will be redelivered",
                extra={"consumer": self.consumer, "events": len(items)},
            )
            for item in items:
                await self._settle(item.msg.nak(self._retry_delay(item)))
            return
        for item, error in zip(items, errors, strict=True):
            if error is None:
                await self._settle(item.msg.ack())
                if self._metrics is not None:
                    self._metrics.consumed(self.consumer, item.event.type).inc()
                continue
            # The event's log lines carry its trace.
            with use_trace(item.event.trace):
                await self._failed(item, error)

    async def _failed(self, item: _Item, error: str) -> None:
        if item.event.attempt >= self._settings.max_attempts:
            await self._dead_letter(
                item.msg, event_id=item.event.id, event_type=item.event.type, error=error
            )
        else:
            log.warning(
                "event handler failed; the event will be retried",
                extra={
                    "consumer": self.consumer,
                    "event_id": item.event.id,
                    "event_type": item.event.type,
                    "attempt": item.event.attempt,
                    "error": error,
                },
            )
            await self._settle(item.msg.nak(self._retry_delay(item)))

    async def _apply(self, items: Sequence[_Item]) -> list[str | None]:
        """Run the handlers and commit; return each event's error, ``None`` for success."""
        try:
            async with self._db.transaction() as session:
                done = await self._inbox.handled(session, [item.event.id for item in items])
                handled: list[ReceivedEvent] = []
                for item in items:
                    if item.event.id not in done:
                        await self._call(self._batch_handler, item.event, session)
                        done.add(item.event.id)
                        handled.append(item.event)
                await self._inbox.record(session, handled)
            return [None] * len(items)
        except Exception:
            log.debug("a handler failed; running the batch one savepoint per event")
        errors: list[str | None] = []
        async with self._db.transaction() as session:
            done = await self._inbox.handled(session, [item.event.id for item in items])
            for item in items:
                if item.event.id in done:
                    errors.append(None)
                    continue
                try:
                    async with session.begin_nested():
                        await self._call(self._handler, item.event, session)
                        await self._inbox.record(session, [item.event])
                except Exception as exc:
                    errors.append(_describe(exc))
                else:
                    done.add(item.event.id)
                    errors.append(None)
        return errors

    async def _call(
        self, handler: EventHandler, event: ReceivedEvent, session: AsyncSession
    ) -> None:
        if self._spans is not None:
            await self._call_in_span(self._spans, handler, event, session)
            return
        with use_trace(event.trace):
            await self._call_handler(handler, event, session)

    async def _call_in_span(
        self,
        spans: SpanRecorder,
        handler: EventHandler,
        event: ReceivedEvent,
        session: AsyncSession,
    ) -> None:
        attributes = {
            "messaging.system": "nats",
            "messaging.operation.type": "process",
            "messaging.destination.name": event.subject,
            "messaging.consumer.group.name": self.consumer,
            "messaging.message.id": event.id,
        }
        span = spans.start(
            f"process {event.subject}",
            SpanKind.CONSUMER,
            event.trace,
            remote=True,
            attributes=attributes,
        )
        error = None
        try:
            with use_trace(span.trace):
                await self._call_handler(handler, event, session)
        except BaseException as exc:
            error = _describe(exc)
            raise
        finally:
            span.end(error=error)

    async def _call_handler(
        self, handler: EventHandler, event: ReceivedEvent, session: AsyncSession
    ) -> None:
        await handler(event, session)
        if log.isEnabledFor(logging.DEBUG):  # spares building the fields per event
            log.debug(
                "event handled",
                extra={
                    "consumer": self.consumer,
                    "event_id": event.id,
                    "event_type": event.type,
                    "attempt": event.attempt,
                },
            )

    async def _dead_letter(self, msg: Msg, *, event_id: str, event_type: str, error: str) -> None:
        attempts = msg.metadata.num_delivered
        try:
            await publish_dead_letter(
                self._js,
                msg,
                consumer=self.consumer,
                event_id=event_id,
                event_type=event_type,
                error=error,
                timeout_seconds=self._settings.publish_timeout_seconds,
            )
        except (nats.errors.Error, APIError) as exc:
            log.error(
                "dead-lettering an event failed; it will be redelivered",
                extra={"consumer": self.consumer, "event_id": event_id, "error": str(exc)},
            )
            await self._settle(msg.nak(self._settings.retry_delay_seconds(attempts)))
            return
        if self._metrics is not None:
            self._metrics.dead_lettered(self.consumer, event_type).inc()
        log.error(
            "event dead-lettered",
            extra={
                "consumer": self.consumer,
                "event_id": event_id,
                "event_type": event_type,
                "attempts": attempts,
                "error": error,
            },
        )
        await self._settle(msg.ack())

    def _retry_delay(self, item: _Item) -> float:
        return self._settings.retry_delay_seconds(item.event.attempt)

    async def _settle(self, ack: Awaitable[None]) -> None:
        # An ack lost with the connection only means a redelivery, which the inbox skips.
        try:
            await ack
        except nats.errors.Error as exc:
            log.warning("acknowledging an event failed: %s", exc, extra={"consumer": self.consumer})

    async def _pause(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._stopping.wait()
        except TimeoutError:
            pass

    async def _recreate_consumer(self) -> None:
        try:
            await self._ensure_consumer()
        except EventError as exc:
            log.warning(str(exc), extra={"consumer": self.consumer})

    async def _prune(self) -> None:
        keep = self._settings.inbox_keep_seconds
        now = time.monotonic()
        if keep <= 0 or now - self._last_prune < _PRUNE_EVERY_SECONDS:
            return
        self._last_prune = now
        try:
            await self._inbox.prune(self._db, keep_seconds=keep)
        except Exception:
            log.exception("pruning the inbox failed", extra={"consumer": self.consumer})


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]
