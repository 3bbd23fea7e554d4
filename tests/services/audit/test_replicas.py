"""Two replicas of the plugin on one database keep one gap-free, intact chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from launcher.natsd import NatsServer
from meshkit.events import build_event, subject_of
from plugmesh.audit.v1 import audit_pb2
from plugmesh.events.v1 import event_pb2, user_events_pb2
from tests.services.audit.conftest import ADMIN, Audit, running_audit, signed
from tests.support.waiting import eventually


@pytest.fixture
async def replicas(
    tmp_path: Path, nats_server: NatsServer, database_url: str
) -> AsyncIterator[tuple[Audit, Audit]]:
    """Two audit processes sharing one database."""
    async with (
        running_audit(tmp_path, nats_server, PLUGMESH_DATABASE_URL=database_url) as first,
        running_audit(tmp_path, nats_server, PLUGMESH_DATABASE_URL=database_url) as second,
    ):
        yield first, second


async def test_concurrent_writers_on_two_replicas_keep_one_chain(
    replicas: tuple[Audit, Audit],
) -> None:
    first, second = replicas
    client = await nats.connect(first.nats_url)
    try:
        js = client.jetstream()
        events = [
            build_event(
                user_events_pb2.UserDeleted(
                    actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id="admin-1")
                ),
                source="/plugmesh/users",
                subject=f"users/u-{index}",
            )
            for index in range(1000)
        ]

        async def publish() -> None:
            for event in events:
                await js.publish(
                    subject_of(event.type),
                    event.SerializeToString(),
                    headers={"Nats-Msg-Id": event.id},
                )

        async def write(audit: Audit, count: int) -> None:
            for _ in range(count):
                await audit.create(action="api.write")

        await asyncio.gather(publish(), write(first, 150), write(second, 150))
    finally:
        await client.close()

    async def everything_recorded() -> audit_pb2.VerifyAuditChainResponse | None:
        verified = await second.verify()
        return verified if verified.entries_checked >= 1300 else None

    verified = await eventually(everything_recorded, timeout_seconds=60, what="1,300 entries")
    assert verified.intact, verified.message
    assert verified.entries_checked == 1300
    request = audit_pb2.ExportAuditEntriesRequest()
    sequences = [
        response.entry.sequence
        async for response in first.stub.ExportAuditEntries(request, metadata=signed(ADMIN))
    ]
    assert sequences == list(range(1, 1301))
