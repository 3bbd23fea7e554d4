"""Every event on the bus becomes exactly one entry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import func, select

from meshkit.events import build_event, subject_of
from meshkit.events.settings import EventSettings
from meshkit.events.streams import ensure_streams
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import auth_events_pb2, event_pb2, user_events_pb2
from plugmesh.users.v1 import users_pb2
from services.audit.tables import EntryRow
from tests.services.audit.conftest import ADMIN, Audit, signed
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def js(recording: Audit) -> AsyncIterator[JetStreamContext]:
    """A JetStream context of a client of its own (the streams exist: the bus made them)."""
    client = await nats.connect(recording.nats_url)
    context = client.jetstream(timeout=10)
    await ensure_streams(context, EventSettings())
    try:
        yield context
    finally:
        await client.close()


async def publish(
    js: JetStreamContext, events: Sequence[event_pb2.Event], *, msg_id: bool = True
) -> None:
    """Publish envelopes straight to JetStream, a few hundred at a time."""
    for start in range(0, len(events), 500):
        chunk = events[start : start + 500]
        await asyncio.gather(
            *(
                js.publish(
                    subject_of(event.type),
                    event.SerializeToString(),
                    headers={"Nats-Msg-Id": event.id} if msg_id else None,
                )
                for event in chunk
            )
        )


def user_created(index: int) -> event_pb2.Event:
    payload = user_events_pb2.UserCreated(
        actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id="admin-1"),
        user=users_pb2.User(user_id=f"u-{index}", email=f"u{index}@example.com"),
    )
    return build_event(payload, source="/plugmesh/users", subject=f"users/u-{index}")


async def stored_ids(recording: Audit) -> tuple[int, int]:
    """(entries, distinct entry ids) in the database."""
    async with recording.store.database.read() as session:
        rows = await session.scalar(select(func.count()).select_from(EntryRow))
        distinct = await session.scalar(select(func.count(func.distinct(EntryRow.entry_id))))
    return rows or 0, distinct or 0


async def test_ten_thousand_events_become_ten_thousand_entries_none_twice(
    recording: Audit, js: JetStreamContext
) -> None:
    events = [user_created(index) for index in range(10_000)]
    await publish(js, events)
    # The same events again without a Nats-Msg-Id: JetStream keeps them, the inbox drops them.
    await publish(js, events[:500], msg_id=False)

    async def all_recorded() -> tuple[int, int] | None:
        counts = await stored_ids(recording)
        return counts if counts[0] >= 10_000 else None

    await eventually(all_recorded, timeout_seconds=150, interval_seconds=0.2, what="10,000 entries")

    # The duplicates were published after the originals; once they are handled too, count.
    async def drained() -> bool | None:
        state = await js.consumer_info("PLUGMESH_EVENTS", "audit-all")
        return True if state.num_pending == 0 and state.num_ack_pending == 0 else None

    await eventually(drained, timeout_seconds=60, what="the consumer to drain")
    assert await stored_ids(recording) == (10_000, 10_000)
    async with recording.store.database.read() as session:
        ids = set((await session.scalars(select(EntryRow.entry_id))).all())
    assert ids == {event.id for event in events}
    verified = await recording.verify()
    assert verified.intact
    assert verified.entries_checked == 10_000


async def test_an_event_is_recorded_with_who_what_when_where(
    recording: Audit, js: JetStreamContext
) -> None:
    payload = auth_events_pb2.AuthFailed(
        actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_ANONYMOUS),
        reason=auth_events_pb2.AUTH_FAILURE_REASON_EXPIRED,
        credential_fingerprint="0123456789abcdef",
        ip_address="203.0.113.7",
        user_agent="curl/8.5",
        request_id="req-42",
    )
    event = build_event(payload, source="/plugmesh/gateway", subject="")
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    await js.publish(
        subject_of(event.type),
        event.SerializeToString(),
        headers={"Nats-Msg-Id": event.id, "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )

    async def recorded() -> audit_pb2.AuditEntry | None:
        request = audit_pb2.ListAuditEntriesRequest(action="auth.failed")
        response = await recording.stub.ListAuditEntries(request, metadata=signed(ADMIN))
        return response.entries[0] if response.entries else None

    entry = await eventually(recorded, timeout_seconds=30, what="the auth.failed entry")
    assert entry.entry_id == event.id
    assert entry.action == "auth.failed"
    assert entry.occur_time == event.time
    assert entry.actor.type == event_pb2.ACTOR_TYPE_ANONYMOUS
    assert entry.outcome == audit_pb2.OUTCOME_DENIED
    assert (entry.ip_address, entry.user_agent, entry.request_id) == (
        "203.0.113.7",
        "curl/8.5",
        "req-42",
    )
    assert entry.trace_id == trace_id
    assert entry.source == "/plugmesh/gateway"
    assert entry.details["@type"] == "type.googleapis.com/plugmesh.events.v1.AuthFailed"
    assert entry.details["reason"] == "AUTH_FAILURE_REASON_EXPIRED"
    assert entry.details["credentialFingerprint"] == "0123456789abcdef"
    assert (entry.sequence, entry.previous_hash, len(entry.hash)) == (1, "", 64)


async def test_an_event_whose_id_is_already_logged_appends_nothing(
    recording: Audit, js: JetStreamContext
) -> None:
    events = [user_created(index) for index in range(20)]
    taken = events[7]
    await recording.create(entry_id=taken.id, action="written.first")
    await publish(js, events)

    async def drained() -> bool | None:
        state = await js.consumer_info("PLUGMESH_EVENTS", "audit-all")
        if state.num_pending or state.num_ack_pending:
            return None
        return True if (await stored_ids(recording))[0] >= 20 else None

    await eventually(drained, timeout_seconds=60, what="every event to be handled")
    assert await stored_ids(recording) == (20, 20)
    request = audit_pb2.GetAuditEntryRequest(entry_id=taken.id)
    response = await recording.stub.GetAuditEntry(request, metadata=signed(ADMIN))
    assert response.entry.action == "written.first"
    assert (await recording.verify()).intact
