"""``rate_limit.exceeded``: a caller went over a limit, recorded once per caller, key and
window, so the audit log says who was throttled, where and until when.

The limiter tells :class:`ExceededEvents` of the first refusal of each caller, key and
window (:class:`~gateway.ratelimit.limiter.Exceeded`); the event is written to the
gateway's outbox in a transaction of its own, in the background: a refusal never waits
on the database, and the outbox relays the event to NATS when it can (nothing is lost
while NATS is away). Later refusals in the window are answered from the limiter's memory
and write nothing, so a flood of refused calls is one event, not a flood of events.

Every replica that refuses the caller in that window writes the event with the same id
(a UUIDv7 from the window's start and the count's name): replicas sharing the database
(as they share the upstream servers' list) find it written already, and for those that
do not, JetStream keeps one copy (within its duplicate window, two minutes by default)
and the audit log records one entry (it skips an id it holds).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging

from sqlalchemy.exc import IntegrityError

from gateway.ratelimit.limiter import Exceeded
from meshkit.db import Database
from meshkit.events import build_event, uuid7_of
from meshkit.events.outbox import Outbox
from meshkit.tasks import cancel_and_wait
from plugmesh.events.v1 import event_pb2, rate_limit_events_pb2

__all__ = ["ExceededEvents", "exceeded_event"]

log = logging.getLogger(__name__)

_ACTOR_TYPES = {
    "user": event_pb2.ACTOR_TYPE_USER,
    "machine": event_pb2.ACTOR_TYPE_MACHINE,
    "address": event_pb2.ACTOR_TYPE_ANONYMOUS,
}


class ExceededEvents:
    """Writes ``rate_limit.exceeded`` to the gateway's outbox.

    Args:
        database: The gateway's database, which holds the outbox.
        outbox: The gateway's outbox (source ``gateway``).
    """

    def __init__(self, database: Database, outbox: Outbox) -> None:
        self._database = database
        self._outbox = outbox
        self._writing: set[asyncio.Task[None]] = set()
        self._closed = False

    def __call__(self, exceeded: Exceeded) -> None:
        """Write the event of ``exceeded`` in the background; returns at once."""
        if self._closed:
            return
        task = asyncio.get_running_loop().create_task(
            self._write(exceeded), name="gateway-rate-limit-exceeded"
        )
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def close(self, timeout_seconds: float = 5.0) -> None:
        """Wait for the events being written, then write no more. Safe to call twice."""
        self._closed = True
        pending = tuple(self._writing)
        if pending:
            _, late = await asyncio.wait(pending, timeout=timeout_seconds)
            await cancel_and_wait(*late)

    async def _write(self, exceeded: Exceeded) -> None:
        event = exceeded_event(exceeded, source=self._outbox.source)
        try:
            async with self._database.transaction() as session:
                self._outbox.add_event(session, event)
        except IntegrityError:
            # Replicas sharing the database: another one recorded this window already.
            log.debug("a rate limit's refusal was recorded already", extra={"id": event.id})
        except Exception as exc:
            # The refusal stands; only its record is missing (the metric still counts it).
            cause = getattr(exc, "orig", None) or exc
            log.warning(
                "a rate limit's refusal could not be recorded: %s: %s",
                type(exc).__name__,
                cause,
                extra={"key": exceeded.key},
            )


def exceeded_event(exceeded: Exceeded, *, source: str) -> event_pb2.Event:
    """The envelope of ``exceeded``, with the id every replica gives it."""
    kind, _, subject_id = exceeded.subject.id.partition(":")
    payload = rate_limit_events_pb2.RateLimitExceeded(
        actor=event_pb2.Actor(
            type=_ACTOR_TYPES.get(kind, event_pb2.ACTOR_TYPE_UNSPECIFIED), id=subject_id
        ),
        key=exceeded.key,
        limit=exceeded.limit.count,
        protocol=exceeded.protocol,
    )
    payload.window.FromTimedelta(dt.timedelta(seconds=exceeded.limit.window_seconds))
    payload.window_end_time.FromNanoseconds(round(exceeded.window_end_seconds * 1e9))
    start_millis = round((exceeded.window_end_seconds - exceeded.limit.window_seconds) * 1000)
    digest = hashlib.sha256(exceeded.counter.encode()).digest()
    event_id = uuid7_of(
        start_millis, int.from_bytes(digest[:2], "big"), int.from_bytes(digest[2:10], "big")
    )
    return build_event(
        payload, source=source, subject=f"rate-limits/{kind}/{subject_id}", event_id=event_id
    )
