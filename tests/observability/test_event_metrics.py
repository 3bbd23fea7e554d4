"""An event bus's metrics, scraped from its plugin server's endpoint, with a real
nats-server: published, consumed, redelivered, dead-lettered, outbox depth, consumer lag."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from launcher.natsd import NatsServer
from meshkit.config import MeshConfig
from meshkit.db import Database
from meshkit.events import EventBus, EventSettings, Outbox, ReceivedEvent, source_of
from meshkit.server import PluginServer
from tests.events.helpers import fast, user_created
from tests.observability.scrape import Scrape, scrape
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

#: Samples every 100 ms; the outbox is polled rarely, so rows written by another process
#: stay pending until the relay is woken.
SETTINGS = fast(metrics_interval_millis=100, outbox_poll_millis=60_000, max_attempts=2)
CONSUMER = "audit-all"
PUBLISHED = "plugmesh_events_published_total"
CONSUMED = "plugmesh_events_consumed_total"


def plugin(
    name: str, database: Database, url: str, settings: EventSettings
) -> tuple[PluginServer, EventBus]:
    """A plugin server serving metrics on a free port, with its event bus attached."""
    server = PluginServer(
        name,
        [],
        address="127.0.0.1:0",
        config=MeshConfig.from_env({}),
        register=False,
        metrics_address="127.0.0.1:0",
    )
    bus = EventBus(name, database=database, nats_url=url, settings=settings, grace_seconds=1)
    bus.attach(server)
    return server, bus


@contextlib.asynccontextmanager
async def running(*servers: PluginServer) -> AsyncIterator[list[str]]:
    """Start the servers (and so their buses); yield their metrics addresses; stop them."""
    try:
        for server in servers:
            await server.start()
        yield [server.metrics_address for server in servers]
    finally:
        for server in servers:
            await server.stop(0)


async def scraped_until(address: str, holds: Callable[[Scrape], bool], what: str) -> Scrape:
    """Scrape ``address`` until ``holds``; return that scrape. Fails after 20 s, showing
    the last scrape."""
    last: list[Scrape] = []

    async def check() -> Scrape | None:
        last[:] = [await scrape(address)]
        return last[0] if holds(last[0]) else None

    try:
        return await eventually(check, timeout_seconds=20, interval_seconds=0.1, what=what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last scrape: {last[0]}") from None


async def publish(bus: EventBus, *subjects: str) -> None:
    async with bus.database.transaction() as session:
        for subject in subjects:
            bus.publish(session, user_created(subject), subject=subject)


async def test_published_and_consumed_events_are_counted_and_the_outbox_depth_sampled(
    nats_server: NatsServer, publisher_db: Database, consumer_db: Database
) -> None:
    handled: list[str] = []

    async def record(event: ReceivedEvent, session: AsyncSession) -> None:
        handled.append(event.id)

    publishing, publisher = plugin("users", publisher_db, nats_server.url, SETTINGS)
    consuming, consumer = plugin("audit", consumer_db, nats_server.url, SETTINGS)
    consumer.subscribe(">", record)
    async with running(publishing, consuming) as (published_at, consumed_at):
        # Rows another replica wrote: pending in the outbox until the relay polls.
        elsewhere = Outbox(source_of("users"))
        async with publisher_db.transaction() as session:
            for i in range(3):
                elsewhere.add(session, user_created(f"late-{i}"))
        await scraped_until(
            published_at,
            lambda s: s.value("plugmesh_events_outbox_pending") == 3,
            "an outbox depth of 3",
        )
        assert (await scrape(published_at)).value(PUBLISHED) == 0

        assert publisher.relay is not None
        publisher.relay.wake()
        await publish(publisher, "users/1", "users/2")
        after = await scraped_until(
            published_at,
            lambda s: (
                s.value("plugmesh_events_outbox_pending") == 0
                and s.value(PUBLISHED, type="user.created") == 5
            ),
            "5 events published and the outbox empty",
        )
        assert after.value("plugmesh_events_publish_failures_total") == 0
        consumed = await scraped_until(
            consumed_at,
            lambda s: s.value(CONSUMED, consumer=CONSUMER, type="user.created") == 5,
            "5 events consumed",
        )
        assert consumed.value("plugmesh_events_redelivered_total") == 0
        assert consumed.value("plugmesh_events_dead_lettered_total") == 0
        assert len(handled) == 5


async def test_redeliveries_and_dead_letters_are_counted_by_consumer_and_type(
    nats_server: NatsServer, publisher_db: Database, consumer_db: Database
) -> None:
    async def picky(event: ReceivedEvent, session: AsyncSession) -> None:
        subject = event.envelope.subject
        if subject == "users/poison" or (subject == "users/flaky" and event.attempt == 1):
            raise RuntimeError(f"cannot handle {subject} (attempt {event.attempt})")

    publishing, publisher = plugin("users", publisher_db, nats_server.url, SETTINGS)
    consuming, consumer = plugin("audit", consumer_db, nats_server.url, SETTINGS)
    consumer.subscribe(">", picky)
    async with running(publishing, consuming) as (_, consumed_at):
        await publish(publisher, "users/fine", "users/flaky", "users/poison")
        found = await scraped_until(
            consumed_at,
            lambda s: (
                s.value("plugmesh_events_dead_lettered_total") == 1 and s.value(CONSUMED) == 2
            ),
            "two events consumed and one dead-lettered",
        )
    labels = {"consumer": CONSUMER, "type": "user.created"}
    assert found.value(CONSUMED, **labels) == 2
    assert found.value("plugmesh_events_dead_lettered_total", **labels) == 1
    # flaky and poison each came a second time (max_attempts=2).
    assert found.value("plugmesh_events_redelivered_total", **labels) == 2


async def test_consumer_lag_grows_while_the_consumer_is_stalled_and_drains_after(
    nats_server: NatsServer, publisher_db: Database, consumer_db: Database
) -> None:
    gate = asyncio.Event()

    async def stalled(event: ReceivedEvent, session: AsyncSession) -> None:
        await gate.wait()

    publishing, publisher = plugin("users", publisher_db, nats_server.url, SETTINGS)
    # One event per fetch: the stalled handler holds one, the next waits in hand, the
    # rest wait in the stream.
    one_by_one = fast(metrics_interval_millis=100, fetch_batch=1)
    consuming, consumer = plugin("audit", consumer_db, nats_server.url, one_by_one)
    consumer.subscribe(">", stalled)
    async with running(publishing, consuming) as (_, consumed_at):
        await publish(publisher, *(f"users/{i}" for i in range(6)))

        def lagging(s: Scrape) -> bool:
            return s.value("plugmesh_events_consumer_pending", consumer=CONSUMER) >= 3

        stuck = await scraped_until(consumed_at, lagging, "a consumer lag of at least 3")
        assert stuck.value("plugmesh_events_consumer_ack_pending", consumer=CONSUMER) >= 1
        assert stuck.value(CONSUMED) == 0

        gate.set()

        def caught_up(s: Scrape) -> bool:
            return (
                s.value(CONSUMED, consumer=CONSUMER) == 6
                and s.value("plugmesh_events_consumer_pending", consumer=CONSUMER) == 0
                and s.value("plugmesh_events_consumer_ack_pending", consumer=CONSUMER) == 0
            )

        await scraped_until(consumed_at, caught_up, "the consumer caught up, lag 0")
