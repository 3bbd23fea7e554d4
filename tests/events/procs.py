"""Plugin processes for the crash tests, run as ``python -m tests.events.procs``.

- ``consume NATS_URL DB [--sleep-ms N]``: a consumer storing every event in ``seen``,
  slowed by N ms per event so that a test can kill it in the middle of a batch.
- ``publish NATS_URL DB --count N --die-after-commit``: commits N state changes with
  their events in one transaction and SIGKILLs itself the moment the commit returns,
  before the running relay can send anything.
- ``publish NATS_URL DB``: the publisher restarted: runs until SIGTERM, relaying what
  the outbox holds.

Settings come from ``PLUGMESH_EVENTS_*`` like in any plugin. Each prints ``ready`` on
stdout once its event bus runs.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from sqlalchemy.ext.asyncio import AsyncSession

from meshkit.db import Database
from meshkit.events import EventBus, EventSettings, ReceivedEvent
from tests.events.helpers import Base, Change, record, user_created


async def _until_terminated() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print("ready", flush=True)
    await stop.wait()


async def consume(url: str, path: str, sleep_ms: int) -> None:
    db = Database(f"sqlite:///{path}")
    await db.create_all(Base.metadata)
    bus = EventBus("consumer", database=db, nats_url=url, settings=EventSettings.from_env())

    async def slow_record(event: ReceivedEvent, session: AsyncSession) -> None:
        await record(event, session)
        await session.flush()  # the row is written now, the commit comes after the batch
        if sleep_ms:
            await asyncio.sleep(sleep_ms / 1000)

    bus.subscribe(">", slow_record, consumer="crashy")
    await bus.start()
    try:
        await _until_terminated()
    finally:
        await bus.close()
        await db.close()


async def publish(url: str, path: str, count: int, die_after_commit: bool) -> None:
    db = Database(f"sqlite:///{path}")
    await db.create_all(Base.metadata)
    bus = EventBus("publisher", database=db, nats_url=url, settings=EventSettings.from_env())
    await bus.start()
    try:
        if die_after_commit:
            # Runs inside commit(), right after the database committed: nothing can be sent.
            bus.outbox.on_commit(lambda _rows: os.kill(os.getpid(), signal.SIGKILL))
            print("ready", flush=True)
            async with db.transaction() as session:
                for i in range(count):
                    event = bus.publish(session, user_created(f"k{i}"), subject=f"users/k{i}")
                    session.add(Change(user_id=f"k{i}", event_id=event.id))
            raise AssertionError("still alive after the commit")
        await _until_terminated()
    finally:
        await bus.close()
        await db.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="procs")
    commands = parser.add_subparsers(dest="command", required=True)
    consumer = commands.add_parser("consume")
    consumer.add_argument("url")
    consumer.add_argument("db")
    consumer.add_argument("--sleep-ms", type=int, default=0)
    publisher = commands.add_parser("publish")
    publisher.add_argument("url")
    publisher.add_argument("db")
    publisher.add_argument("--count", type=int, default=0)
    publisher.add_argument("--die-after-commit", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.command == "consume":
        asyncio.run(consume(args.url, args.db, args.sleep_ms))
    else:
        asyncio.run(publish(args.url, args.db, args.count, args.die_after_commit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
