"""The event bus of one plugin: its outbox, relay and subscriptions, tied to its lifecycle.

::

    db = Database(config.database_url_for("users"))
    bus = EventBus("users", database=db, nats_url=config.nats_url,
                   settings=EventSettings.from_env())
    bus.subscribe("auth.login", on_login)          # durable consumer "users-auth_login"
    server.add_closer(db.close)
    bus.attach(server)                             # starts before serving, closes after

    async with db.transaction() as session:        # in a servicer
        session.add(UserRow(...))
        bus.publish(session, UserCreated(...), subject="users/u-1")

``start`` connects to NATS (reconnecting forever afterwards), creates the outbox and inbox
tables, makes sure the streams exist, and starts the relay, the subscriptions and the
sampling of its gauges. Its metrics (:mod:`meshkit.events.metrics`) go to the registry of
the server it is attached to, which serves them.
``drain`` stops the subscriptions after their batch in hand and gives the relay one last
flush; ``close`` also closes the NATS connection. Each is safe to call twice. The bus
does not own the database: close it after the bus.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import logging
import re
from dataclasses import dataclass
from typing import Protocol

import nats
import nats.errors
from google.protobuf import message
from nats.aio.client import Client
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from meshkit import db
from meshkit.db import Database
from meshkit.events._nats import JetStreamPublisher
from meshkit.events.connection import connect_nats
from meshkit.events.envelope import source_of
from meshkit.events.errors import EventBusStateError
from meshkit.events.metrics import EventMetrics, Sampler
from meshkit.events.outbox import Outbox
from meshkit.events.relay import OutboxRelay
from meshkit.events.settings import EventSettings
from meshkit.events.streams import ensure_streams
from meshkit.events.subscriber import EventHandler, Subscription
from meshkit.events.tables import MIGRATIONS
from meshkit.registration import Backoff
from meshkit.spans import SpanRecorder
from meshkit.tasks import cancel_and_wait
from meshkit.tls_settings import MeshTls
from meshkit.tracing import TraceContext
from plugmesh.events.v1 import event_pb2

__all__ = ["EventBus", "EventBusStatus", "Lifecycle", "Publisher", "Subscriber", "default_consumer"]

log = logging.getLogger(__name__)

# How a bus that connects in the background tries again.
_RECONNECT = Backoff(initial_seconds=0.5, maximum_seconds=10.0)


class Lifecycle(db.Lifecycle, Protocol):
    """A :class:`meshkit.db.Lifecycle` with a metrics registry, such as
    :class:`meshkit.server.PluginServer`."""

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The process's Prometheus registry."""
        ...

    @property
    def spans(self) -> SpanRecorder | None:
        """Where the process's spans go; ``None`` with traces off."""
        ...


class Publisher(Protocol):
    """Writes events to the outbox of a transaction: the seam a plugin's change sink
    publishes through (:meth:`EventBus.publish`)."""

    def publish(
        self, session: AsyncSession, payload: message.Message, *, subject: str = ""
    ) -> event_pb2.Event:
        """Publish ``payload`` about ``subject`` when ``session`` commits."""
        ...


class Subscriber(Protocol):
    """Subscribes handlers to event types: the seam a plugin subscribes through
    (:meth:`EventBus.subscribe`)."""

    def subscribe(
        self,
        pattern: str,
        handler: EventHandler,
        *,
        consumer: str | None = None,
        batch_handler: EventHandler | None = None,
    ) -> str:
        """Handle events whose type matches ``pattern``; returns the consumer's name."""
        ...


@dataclass(frozen=True)
class _Subscribed:
    """A subscription made before start."""

    pattern: str
    handler: EventHandler
    batch_handler: EventHandler | None
    consumer: str


class EventBusStatus(enum.Enum):
    """Lifecycle of an :class:`EventBus`."""

    NEW = "new"
    RUNNING = "running"
    DRAINING = "draining"
    CLOSED = "closed"


def default_consumer(service: str, pattern: str) -> str:
    """A durable consumer name from a service and a pattern: ``audit``, ``>`` → ``audit-all``."""
    token = pattern.replace(">", "all").replace("*", "any").replace(".", "_")
    return f"{service}-{re.sub(r'[^A-Za-z0-9_-]', '_', token)}"


class EventBus:
    """Publishing through the outbox, subscribing, and their lifecycle, for one plugin.

    Args:
        service: The plugin's short name; the events' source is ``/plugmesh/<service>``.
        database: The plugin's own database: outbox, inbox and the handlers' writes.
        nats_url: Where NATS runs.
        settings: Streams, retries, batches; the defaults when omitted.
        grace_seconds: How long ``drain`` lets batches and the last flush take.
        connect_timeout_seconds: How long ``start`` tries to reach NATS.
        connect_in_background: ``start`` returns once the outbox is ready and reaches
            NATS in the background, trying until it answers; events wait in the outbox
            meanwhile. For a process that must run while NATS is away (the registry).
        metrics_registry: Where its metrics go; by default the registry of the server it
            is attached to, else one of its own.
        spans: Where the spans of the events it publishes and handles go; by default
            those of the server it is attached to; none with traces off.
        nats_tls: The certificate its NATS connection presents over TLS
            (``MeshConfig.nats_tls``); plaintext when ``None``.
    """

    def __init__(
        self,
        service: str,
        *,
        database: Database,
        nats_url: str,
        settings: EventSettings | None = None,
        grace_seconds: float = 5.0,
        connect_timeout_seconds: float = 10.0,
        connect_in_background: bool = False,
        metrics_registry: CollectorRegistry | None = None,
        spans: SpanRecorder | None = None,
        nats_tls: MeshTls | None = None,
    ) -> None:
        self.service = service
        self._nats_tls = nats_tls
        self._own_metrics = metrics_registry is None
        self.metrics = EventMetrics(metrics_registry or CollectorRegistry())
        self.database = database
        self.settings = settings or EventSettings()
        self.status = EventBusStatus.NEW
        self.outbox = Outbox(source_of(service))
        self.outbox.spans = spans
        self._nats_url = nats_url
        self._grace = grace_seconds
        self._connect_timeout = connect_timeout_seconds
        self._in_background = connect_in_background
        self._connecting: asyncio.Task[None] | None = None
        self._subscriptions: list[_Subscribed] = []
        self._running: list[Subscription] = []
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._relay: OutboxRelay | None = None
        self._sampler: Sampler | None = None
        self._lifecycle = asyncio.Lock()

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context, once started.

        Raises:
            EventBusStateError: The bus is not running.
        """
        if self._js is None:
            raise EventBusStateError(f"event bus of {self.service} is {self.status.value}")
        return self._js

    @property
    def relay(self) -> OutboxRelay | None:
        """The outbox relay, once started."""
        return self._relay

    def publish(
        self,
        session: AsyncSession,
        payload: message.Message,
        *,
        subject: str = "",
        time: dt.datetime | None = None,
        trace: TraceContext | None = None,
    ) -> event_pb2.Event:
        """Publish ``payload`` when the transaction of ``session`` commits (via the outbox).

        See :meth:`Outbox.add <meshkit.events.outbox.Outbox.add>`; returns the envelope.
        """
        return self.outbox.add(session, payload, subject=subject, time=time, trace=trace)

    def subscribe(
        self,
        pattern: str,
        handler: EventHandler,
        *,
        consumer: str | None = None,
        batch_handler: EventHandler | None = None,
    ) -> str:
        """Handle events whose type matches ``pattern`` (``user.*``, ``>``) with ``handler``.

        Call before :meth:`start`. Returns the durable consumer's name: ``consumer``, or
        ``<service>-<pattern>`` (see :func:`default_consumer`). Every instance of the
        plugin shares the consumer, so each event is handled by one of them.
        ``batch_handler`` handles an event in the first pass of a batch, the one without
        savepoints (see :mod:`meshkit.events.subscriber`); default: ``handler``.

        Raises:
            EventBusStateError: The bus has already started.
            ValueError: The pattern or the consumer name is malformed.
        """
        if self.status is not EventBusStatus.NEW:
            raise EventBusStateError(f"subscribe before start (the bus is {self.status.value})")
        name = consumer or default_consumer(self.service, pattern)
        if any(existing.consumer == name for existing in self._subscriptions):
            raise ValueError(f"consumer {name!r} is already subscribed")
        self._subscriptions.append(_Subscribed(pattern, handler, batch_handler, name))
        return name

    def attach(self, server: Lifecycle) -> None:
        """Start with ``server`` (before it serves) and close after it stopped; count in
        its metrics registry unless the bus was given one, and trace in its spans."""
        self.count_in(server.metrics_registry)
        self.trace_in(server.spans)
        server.add_startup(self.start)
        server.add_closer(self.close)

    def count_in(self, registry: CollectorRegistry) -> None:
        """Count in ``registry`` (a process's, which serves it) unless the bus was given
        one; call before :meth:`start`."""
        if self._own_metrics and self.status is EventBusStatus.NEW:
            self.metrics = EventMetrics(registry)
            self._own_metrics = False

    def trace_in(self, spans: SpanRecorder | None) -> None:
        """Record the spans of the events it publishes and handles in ``spans`` (a
        process's) unless the bus was given a recorder; call before :meth:`start`."""
        if self.outbox.spans is None:
            self.outbox.spans = spans

    async def start(self) -> None:
        """Connect, create tables and streams, start relaying and consuming. Safe to call twice.

        Raises:
            EventError: NATS could not be reached, or a consumer could not be created.
            StreamError: A stream could not be created or updated.
            EventBusStateError: The bus was closed.
        """
        async with self._lifecycle:
            if self.status is EventBusStatus.RUNNING:
                return
            if self.status is not EventBusStatus.NEW:
                raise EventBusStateError(f"event bus of {self.service} is {self.status.value}")
            try:
                await self._start()
            except BaseException:
                await self._shutdown(grace_seconds=0)
                self.status = EventBusStatus.CLOSED
                raise
            self.status = EventBusStatus.RUNNING

    async def _start(self) -> None:
        await self.database.upgrade(MIGRATIONS)
        if self._in_background:
            self._connecting = asyncio.create_task(
                self._keep_connecting(), name=f"plugmesh-events-connect-{self.service}"
            )
        else:
            await self._connect()

    async def _keep_connecting(self) -> None:
        failures = 0
        while True:
            try:
                await self._connect()
                return
            except Exception as exc:
                # Whatever failed (no server, a JetStream timeout, a refused stream), the
                # events are safe in the outbox: clean up and try again.
                failures += 1
                delay = _RECONNECT.delay(failures)
                log.warning(
                    "NATS not reached yet; events wait in the outbox",
                    extra={
                        "service": self.service,
                        "error": f"{type(exc).__name__}: {exc}",
                        "retry_in_seconds": delay,
                    },
                )
            await self._stop_parts(0.0)
            await self._disconnect()
            await asyncio.sleep(delay)

    async def _connect(self) -> None:
        self._nc = await connect_nats(
            self._nats_url,
            name=f"plugmesh-{self.service}",
            timeout_seconds=self._connect_timeout,
            on_reconnect=[self._reconnected],
            tls=self._nats_tls,
        )
        self._js = self._nc.jetstream(timeout=self.settings.publish_timeout_seconds)
        await ensure_streams(self._js, self.settings)
        self._relay = OutboxRelay(
            self.database,
            JetStreamPublisher(self._nc),
            self.settings,
            outbox=self.outbox,
            metrics=self.metrics,
        )
        self._relay.start()
        for subscribed in self._subscriptions:
            subscription = Subscription(
                self._nc,
                self.database,
                consumer=subscribed.consumer,
                pattern=subscribed.pattern,
                handler=subscribed.handler,
                batch_handler=subscribed.batch_handler,
                settings=self.settings,
                metrics=self.metrics,
                spans=self.outbox.spans,
            )
            self._running.append(subscription)
            await subscription.start()
        self._sampler = Sampler(
            self.metrics,
            self.database,
            self._js,
            [subscribed.consumer for subscribed in self._subscriptions],
            interval_seconds=self.settings.metrics_interval_millis / 1000,
        )
        self._sampler.start()
        log.info(
            "event bus started",
            extra={"service": self.service, "consumers": [s.consumer for s in self._running]},
        )

    def _reconnected(self) -> None:
        if self._relay is not None:
            self._relay.reconnected()

    async def drain(self) -> None:
        """Stop consuming after the batches in hand; flush the outbox once. Safe to call twice."""
        async with self._lifecycle:
            if self.status is not EventBusStatus.RUNNING:
                return
            self.status = EventBusStatus.DRAINING
            await self._drain(self._grace)

    async def close(self) -> None:
        """Drain, then close the NATS connection. Safe to call twice."""
        async with self._lifecycle:
            if self.status is EventBusStatus.CLOSED:
                return
            grace = self._grace if self.status is EventBusStatus.RUNNING else 0.0
            self.status = EventBusStatus.DRAINING
            await self._shutdown(grace)
            self.status = EventBusStatus.CLOSED
            log.info("event bus closed", extra={"service": self.service})

    async def _drain(self, grace_seconds: float) -> None:
        connecting, self._connecting = self._connecting, None
        await cancel_and_wait(connecting)
        await self._stop_parts(grace_seconds)

    async def _stop_parts(self, grace_seconds: float) -> None:
        sampler, self._sampler = self._sampler, None
        if sampler is not None:
            await sampler.close()
        running, self._running = self._running, []
        if running:
            await asyncio.gather(*(s.drain(grace_seconds) for s in running))
        relay, self._relay = self._relay, None
        if relay is not None:
            await relay.close(grace_seconds)

    async def _shutdown(self, grace_seconds: float) -> None:
        await self._drain(grace_seconds)
        await self._disconnect()

    async def _disconnect(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None and not nc.is_closed:
            try:
                await nc.drain()
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("draining the NATS connection failed: %s", exc)
                await nc.close()
            except asyncio.CancelledError:
                await nc.close()  # not left open by a close that cancelled the drain
                raise
