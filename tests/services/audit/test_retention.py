"""Retention prunes old entries and leaves a chain that still verifies from its anchor."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from launcher.natsd import NatsServer
from plugmesh.audit.v1 import audit_pb2
from services.audit.retention import PRUNED_ACTION, Pruner
from tests.services.audit.conftest import ADMIN, Audit, append_many, running_audit, signed
from tests.support.waiting import eventually


def pruner(audit: Audit, days: float = 30) -> Pruner:
    return Pruner(
        audit.store,
        retention=dt.timedelta(days=days),
        interval_seconds=3600,
        clock=audit.clock,
    )


async def actions(audit: Audit) -> list[str]:
    request = audit_pb2.ExportAuditEntriesRequest()
    stream = audit.stub.ExportAuditEntries(request, metadata=signed(ADMIN))
    return [response.entry.action async for response in stream]


async def test_pruning_removes_old_entries_and_the_rest_still_verifies(audit: Audit) -> None:
    await append_many(audit, 40, resource="old")
    audit.clock.advance(days=40)
    await append_many(audit, 10, resource="new")
    head_before = (await audit.verify()).head_hash

    result = await pruner(audit).prune_once()

    assert (result.removed, result.through_sequence) == (40, 40)
    remaining = await actions(audit)
    assert remaining == ["bulk.append"] * 10 + [PRUNED_ACTION]
    verified = await audit.verify()
    assert verified.intact, verified.message
    assert verified.entries_checked == 11
    # The entries kept are the ones that were there, unchanged.
    assert (await audit.verify(41, 50)).head_hash == head_before


async def test_the_pruned_entry_names_the_anchor(audit: Audit) -> None:
    await append_many(audit, 5)
    audit.clock.advance(days=31)

    result = await pruner(audit).prune_once()

    listed = await audit.stub.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(action=PRUNED_ACTION), metadata=signed(ADMIN)
    )
    (entry,) = listed.entries
    assert entry.actor.id == "audit"
    assert entry.details["removed"] == 5
    assert entry.details["throughSequence"] == 5
    assert entry.details["anchorHash"] == result.anchor_hash
    assert entry.sequence == 6
    assert entry.previous_hash == result.anchor_hash


async def test_pruning_twice_and_verifying_ranges_across_the_anchor(audit: Audit) -> None:
    await append_many(audit, 10)
    audit.clock.advance(days=31)
    await pruner(audit).prune_once()
    await append_many(audit, 10)
    audit.clock.advance(days=31)
    await pruner(audit).prune_once()  # removes 11 to 21 too, keeps the second marker

    for start, end in [(0, 0), (1, 0), (22, 0), (23, 23)]:
        verified = await audit.verify(start, end)
        assert verified.intact, (start, end, verified.message)
    assert await actions(audit) == [PRUNED_ACTION]


async def test_nothing_recent_is_pruned(audit: Audit) -> None:
    await append_many(audit, 5)
    result = await pruner(audit).prune_once()
    assert result.removed == 0
    assert (await audit.verify()).entries_checked == 5


async def test_pruning_stops_before_a_break_so_the_evidence_stays(audit: Audit) -> None:
    await append_many(audit, 20)
    [(entry_id,)] = await audit.sql("SELECT entry_id FROM audit_entries WHERE sequence = 8")
    await audit.sql("UPDATE audit_entries SET actor_id = 'mallory' WHERE sequence = 8")
    audit.clock.advance(days=31)

    result = await pruner(audit).prune_once()

    assert result.through_sequence == 7
    verified = await audit.verify()
    assert not verified.intact
    assert verified.first_broken_entry_id == entry_id


@pytest.fixture
async def retained(tmp_path: Path, nats_server: NatsServer) -> AsyncIterator[Audit]:
    """An audit process that keeps entries one day and prunes every 50 ms."""
    async with running_audit(
        tmp_path,
        nats_server,
        PLUGMESH_AUDIT_RETENTION_DAYS="1",
        PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS="0.05",
    ) as started:
        yield started


async def test_the_process_prunes_periodically(retained: Audit) -> None:
    assert retained.process is not None
    pruner = retained.process.pruner
    assert pruner is not None
    await append_many(retained, 30)
    retained.clock.advance(days=2)

    async def pruned() -> list[str] | None:
        remaining = await actions(retained)
        return remaining if remaining == [PRUNED_ACTION] else None

    await eventually(pruned, timeout_seconds=20, what="the old entries to be pruned")
    assert (await retained.verify()).intact
    await pruner.close()
    await pruner.close()  # safe twice
