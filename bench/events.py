"""How fast do events go from a plugin's transaction to another plugin's database?

A measurement, not a test. In one run, against one embedded nats-server:

1. raw JetStream publish throughput: envelopes published straight to the stream, once
   pipelined (``publish_async``, every ack awaited at the end) and once one at a time;
2. a consumer catching up: N events wait in the stream (published raw) when a consumer
   process starts; events per second it persists, from its first to its last;
3. end to end: this process commits N events through the transactional outbox (100 per
   transaction) while a consumer process stores each one in its own SQLite database
   (an ORM row plus the inbox row, one transaction per batch); events per second from
   the first commit to the last event persisted;
4. latency: this process commits one event per transaction at a fixed rate; the
   consumer records, at the commit of the transaction that stored an event, how long
   ago the event's time (taken inside the publisher's transaction) was: p50, p90, p99.

Both processes use SQLite in WAL mode, the default asyncio loop and the
``PLUGMESH_EVENTS_*`` settings of the environment, as plugins do. The machine's load
average is printed with the figures: other work on it slows every line.

    .venv/bin/python bench/events.py [--events 20000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import String, func, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from launcher.natsd import NatsServer  # noqa: E402
from meshkit.db import Database  # noqa: E402
from meshkit.events import EventBus, EventSettings, ReceivedEvent, build_event  # noqa: E402
from meshkit.events.relay import MSG_ID  # noqa: E402
from meshkit.events.streams import ensure_streams  # noqa: E402
from plugmesh.events.v1 import user_events_pb2  # noqa: E402
from plugmesh.users.v1 import users_pb2  # noqa: E402


class Base(DeclarativeBase):
    pass


class Stored(Base):
    """What the consumer persists for each event."""

    __tablename__ = "stored"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))


class Change(Base):
    """The publisher's state change that each event is about."""

    __tablename__ = "changes"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)


# --- the consumer process ---------------------------------------------------------------


async def consume(nats_url: str, db_path: str, pattern: str, latencies_path: str) -> None:
    db = Database(f"sqlite:///{db_path}")
    await db.create_all(Base.metadata)
    bus = EventBus(
        "bench-consumer", database=db, nats_url=nats_url, settings=EventSettings.from_env()
    )
    latencies: list[float] = []

    def committed(session: Session) -> None:
        now = time.time()
        latencies.extend(now - t for t in session.info.pop("event_times", ()))

    async def store(event: ReceivedEvent, session: AsyncSession) -> None:
        payload = event.payload
        assert isinstance(payload, user_events_pb2.UserCreated | user_events_pb2.UserUpdated)
        session.add(Stored(event_id=event.id, user_id=payload.user.user_id))
        times = session.info.setdefault("event_times", [])
        if not times and not sa_event.contains(session.sync_session, "after_commit", committed):
            sa_event.listen(session.sync_session, "after_commit", committed)
        times.append(event.envelope.time.ToNanoseconds() / 1e9)

    bus.subscribe(pattern, store, consumer="bench-" + pattern.replace(".", "_"))
    await bus.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    await bus.close()
    await db.close()
    with open(latencies_path, "w") as file:  # noqa: ASYNC230  # the process is ending
        json.dump(latencies, file)


# --- the measuring process --------------------------------------------------------------


async def raw_publish(nats_url: str, count: int) -> tuple[float, float]:
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js, EventSettings())
    events = [
        build_event(
            user_events_pb2.UserCreated(user=users_pb2.User(user_id=f"raw{i}")),
            source="/plugmesh/bench",
            subject=f"users/raw{i}",
        )
        for i in range(count)
    ]
    # A subject no consumer of this benchmark listens to.
    started = time.perf_counter()
    acks = [
        await js.publish_async(
            "plugmesh.events.bench.raw", e.SerializeToString(), headers={MSG_ID: e.id}
        )
        for e in events
    ]
    await asyncio.gather(*acks)
    pipelined = count / (time.perf_counter() - started)
    one_at_a_time_count = min(count, 5_000)
    started = time.perf_counter()
    for e in events[:one_at_a_time_count]:
        await js.publish(
            "plugmesh.events.bench.raw", e.SerializeToString(), headers={MSG_ID: e.id + "-1"}
        )
    sequential = one_at_a_time_count / (time.perf_counter() - started)
    await nc.close()
    return pipelined, sequential


async def start_consumer(
    nats_url: str, workdir: Path, name: str, pattern: str
) -> tuple[asyncio.subprocess.Process, Database, Path]:
    db_path = workdir / f"{name}.db"
    latencies = workdir / f"{name}.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--consume",
        nats_url,
        str(db_path),
        pattern,
        str(latencies),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    if line.strip() != b"ready":
        raise RuntimeError(f"consumer did not start: {line!r}")
    return process, Database(f"sqlite:///{db_path}"), latencies


async def stored(db: Database) -> int:
    """How many events the consumer has persisted.

    The consumer only inserts, so that is the table's largest rowid: an index lookup,
    where ``count(*)`` would scan the table every 10 ms and bill this process (the
    publisher's) for the measurement itself.
    """
    async with db.read() as session:
        return int(await session.scalar(select(func.max(text("rowid"))).select_from(Stored)) or 0)


async def wait_for(db: Database, count: int, timeout_seconds: float) -> float:
    deadline = time.monotonic() + timeout_seconds
    while (n := await stored(db)) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {n} of {count} events persisted in {timeout_seconds:.0f}s")
        await asyncio.sleep(0.01)
    return time.perf_counter()


async def stop_consumer(process: asyncio.subprocess.Process, db: Database) -> None:
    await db.close()
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    await asyncio.wait_for(process.wait(), timeout=30)


async def catch_up(nats_url: str, workdir: Path, count: int) -> float:
    import nats

    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    acks = []
    for i in range(count):
        user = users_pb2.User(user_id=f"c{i}")
        event = build_event(
            user_events_pb2.UserCreated(user=user), source="/plugmesh/bench", subject=f"users/c{i}"
        )
        acks.append(
            await js.publish_async(
                "plugmesh.events.user.created_backlog",
                event.SerializeToString(),
                headers={MSG_ID: event.id},
            )
        )
    await asyncio.gather(*acks)
    await nc.close()
    process, consumer_db, _ = await start_consumer(
        nats_url, workdir, "backlog", "user.created_backlog"
    )
    try:
        while await stored(consumer_db) == 0:  # noqa: ASYNC110  # another process writes it
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        first = await stored(consumer_db)
        finished = await wait_for(consumer_db, count, timeout_seconds=300)
        return (count - first) / (finished - started)
    finally:
        await stop_consumer(process, consumer_db)


async def throughput(
    nats_url: str, workdir: Path, bus: EventBus, db: Database, count: int, nats_pid: int
) -> tuple[float, dict[str, float]]:
    process, consumer_db, _ = await start_consumer(nats_url, workdir, "throughput", "user.created")
    try:
        cpu = CpuMeter(publisher=os.getpid(), nats=nats_pid, consumer=process.pid)
        started = time.perf_counter()
        for first in range(0, count, 100):
            async with db.transaction() as session:
                for i in range(first, min(first + 100, count)):
                    user = users_pb2.User(user_id=f"t{i}")
                    session.add(Change(user_id=user.user_id))
                    bus.publish(
                        session, user_events_pb2.UserCreated(user=user), subject=f"users/t{i}"
                    )
        finished = await wait_for(consumer_db, count, timeout_seconds=300)
        return count / (finished - started), cpu.per_event(count)
    finally:
        await stop_consumer(process, consumer_db)


async def latency(
    nats_url: str, workdir: Path, bus: EventBus, db: Database, rate: float, seconds: float
) -> tuple[list[float], float]:
    process, consumer_db, latencies_path = await start_consumer(
        nats_url, workdir, "latency", "user.updated"
    )
    count = int(rate * seconds)
    try:
        started = time.perf_counter()
        for i in range(count):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            async with db.transaction() as session:
                user = users_pb2.User(user_id=f"l{i}")
                session.add(Change(user_id=user.user_id))
                bus.publish(session, user_events_pb2.UserUpdated(user=user), subject=f"users/l{i}")
        achieved = count / (time.perf_counter() - started)
        await wait_for(consumer_db, count, timeout_seconds=120)
    finally:
        await stop_consumer(process, consumer_db)
    return json.loads(latencies_path.read_text()), achieved


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time the processes of one measurement used, per event."""

    def __init__(self, **pids: int) -> None:
        self._pids = pids
        self._start = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def per_event(self, count: int) -> dict[str, float]:
        """Microseconds of CPU per event, by process, since the meter was made."""
        return {
            name: (cpu_seconds(pid) - self._start[name]) / count * 1e6
            for name, pid in self._pids.items()
        }


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=1000, method="inclusive")[int(q * 1000) - 1]


async def measure(args: argparse.Namespace) -> None:
    load_before = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="plugmesh-bench-") as tmp:
        workdir = Path(tmp)
        async with NatsServer(workdir / "jetstream") as server:
            pipelined, sequential = await raw_publish(server.url, args.events)
            caught_up = await catch_up(server.url, workdir, args.events)
            db = Database(f"sqlite:///{workdir / 'publisher.db'}")
            await db.create_all(Base.metadata)
            bus = EventBus(
                "bench-publisher",
                database=db,
                nats_url=server.url,
                settings=EventSettings.from_env(),
            )
            await bus.start()
            try:
                assert server.pid is not None
                persisted, cpu = await throughput(
                    server.url, workdir, bus, db, args.events, server.pid
                )
                latencies, achieved = await latency(
                    server.url, workdir, bus, db, args.rate, args.seconds
                )
            finally:
                await bus.close()
                await db.close()
    ms = [value * 1000 for value in latencies]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"machine: {os.cpu_count()} cores, load average {load} (before: {load_before}), "
        f"Python {sys.version.split()[0]}, SQLite WAL"
    )
    print(f"raw JetStream publish, pipelined        {pipelined:>9,.0f} events/s")
    print(f"raw JetStream publish, one at a time    {sequential:>9,.0f} events/s")
    print(
        f"consumer catching up a backlog          {caught_up:>9,.0f} events/s persisted "
        f"({args.events:,} events waiting)"
    )
    print(
        f"outbox → JetStream → consumer's SQLite  {persisted:>9,.0f} events/s persisted "
        f"({args.events:,} events, 100 per publisher transaction)"
    )
    print(
        "CPU per event in that run: "
        + ", ".join(f"{name} {micros:,.0f} µs" for name, micros in cpu.items())
        + f" (sum {sum(cpu.values()):,.0f} µs; {os.cpu_count()} cores)"
    )
    print(
        f"publish→persist latency at {achieved:,.0f} events/s (1 per transaction, "
        f"{len(ms):,} events): p50 {percentile(ms, 0.5):.1f} ms, "
        f"p90 {percentile(ms, 0.9):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, "
        f"max {max(ms):.1f} ms"
    )


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--consume":
        asyncio.run(consume(*sys.argv[2:6]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events for throughput")
    parser.add_argument("--rate", type=float, default=100, help="events/s for latency")
    parser.add_argument("--seconds", type=float, default=10, help="duration of the latency run")
    asyncio.run(measure(parser.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
