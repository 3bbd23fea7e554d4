"""VerifyAuditChain finds what was changed or removed behind the plugin's back."""

from __future__ import annotations

import dataclasses
import itertools

import grpc
import pytest

from meshkit.errors import error_info
from plugmesh.audit.v1 import audit_pb2
from services.audit.chain import entry_hash
from services.audit.model import Visibility
from tests.services.audit.conftest import ADMIN, Audit, signed


async def seed(audit: Audit, count: int = 10) -> list[audit_pb2.AuditEntry]:
    return [
        await audit.create(
            entry_id=f"e-{index}", action="user.updated", resource=f"users/u-{index}"
        )
        for index in range(1, count + 1)
    ]


async def test_an_untouched_chain_is_intact(audit: Audit) -> None:
    entries = await seed(audit)

    result = await audit.verify()

    assert result.intact
    assert result.entries_checked == 10
    assert result.head_hash == entries[-1].hash
    assert result.reason == audit_pb2.BREAK_REASON_UNSPECIFIED
    assert (result.first_broken_entry_id, result.first_broken_sequence) == ("", 0)
    assert [entry.sequence for entry in entries] == list(range(1, 11))
    assert all(b.previous_hash == a.hash for a, b in itertools.pairwise(entries))


@pytest.mark.parametrize(
    "assignment",
    [
        pytest.param("action = 'user.deleted'", id="action"),
        pytest.param("actor_id = 'mallory'", id="actor"),
        pytest.param("resource = 'users/nobody'", id="resource"),
        pytest.param("outcome = 'failure'", id="outcome"),
        pytest.param("outcome = 'hacked'", id="outcome-unknown-value"),
        pytest.param("details = '{\"injected\": true}'", id="details"),
        pytest.param("details = 'not json'", id="details-not-json"),
        pytest.param("occur_time = '2001-01-01 00:00:00.000000'", id="occur-time"),
        pytest.param("record_time = '2001-01-01 00:00:00.000000'", id="record-time"),
        pytest.param("ip_address = '10.0.0.1'", id="ip-address"),
        pytest.param("hash = '" + "0" * 64 + "'", id="hash"),
        pytest.param("previous_hash = '" + "0" * 64 + "'", id="previous-hash"),
        pytest.param("entry_id = 'e-other'", id="entry-id"),
    ],
)
async def test_a_row_changed_in_the_database_is_named(audit: Audit, assignment: str) -> None:
    await seed(audit)
    await audit.sql(f"UPDATE audit_entries SET {assignment} WHERE sequence = 6")
    [(entry_id,)] = await audit.sql("SELECT entry_id FROM audit_entries WHERE sequence = 6")

    result = await audit.verify()

    assert not result.intact
    assert result.first_broken_entry_id == entry_id
    assert result.first_broken_sequence == 6
    assert result.reason == audit_pb2.BREAK_REASON_HASH_MISMATCH
    assert result.entries_checked == 6
    assert "changed" in result.message


async def test_a_row_removed_from_the_middle_is_a_gap(audit: Audit) -> None:
    await seed(audit)
    await audit.sql("DELETE FROM audit_entries WHERE sequence = 5")

    result = await audit.verify()

    assert not result.intact
    assert result.reason == audit_pb2.BREAK_REASON_SEQUENCE_GAP
    assert result.first_broken_sequence == 5
    assert result.first_broken_entry_id == "e-6"


async def test_rows_removed_from_the_end_are_a_gap(audit: Audit) -> None:
    await seed(audit)
    await audit.sql("DELETE FROM audit_entries WHERE sequence >= 9")

    result = await audit.verify()

    assert not result.intact
    assert result.reason == audit_pb2.BREAK_REASON_SEQUENCE_GAP
    assert result.first_broken_sequence == 9
    assert result.first_broken_entry_id == ""


async def test_a_rewritten_and_rehashed_entry_breaks_the_next_link(audit: Audit) -> None:
    await seed(audit)
    stored = await audit.store.get("e-4", Visibility(everything=True))
    assert stored is not None
    # A tamperer who knows the canonical form recomputes entry 4's hash; entry 5 still
    # links to the old one.
    forged = dataclasses.replace(stored, action="user.deleted")
    await audit.sql(
        "UPDATE audit_entries SET action = :action, hash = :hash WHERE sequence = 4",
        action=forged.action,
        hash=entry_hash(forged),
    )

    result = await audit.verify()

    assert (result.first_broken_entry_id, result.first_broken_sequence) == ("e-5", 5)
    assert result.reason == audit_pb2.BREAK_REASON_PREVIOUS_HASH_MISMATCH
    assert result.head_hash == entry_hash(forged)


@pytest.mark.parametrize(
    ("start", "end", "intact", "checked"),
    [
        pytest.param(1, 5, True, 5, id="before-the-change"),
        pytest.param(3, 6, True, 4, id="middle-before-the-change"),
        pytest.param(8, 10, True, 3, id="after-the-change"),
        pytest.param(6, 0, False, 2, id="from-before-to-the-head"),
        pytest.param(0, 0, False, 7, id="everything"),
        pytest.param(11, 0, True, 0, id="beyond-the-head"),
    ],
)
async def test_a_range_is_checked_on_its_own(
    audit: Audit, start: int, end: int, intact: bool, checked: int
) -> None:
    await seed(audit)
    await audit.sql("UPDATE audit_entries SET action = 'x' WHERE sequence = 7")

    result = await audit.verify(start, end)

    assert (result.intact, result.entries_checked) == (intact, checked)
    if not intact:
        assert result.first_broken_entry_id == "e-7"


async def test_a_tampered_entry_can_still_be_read(audit: Audit) -> None:
    await seed(audit)
    await audit.sql("UPDATE audit_entries SET outcome = 'hacked', details = '[' WHERE sequence = 2")

    response = await audit.stub.GetAuditEntry(
        audit_pb2.GetAuditEntryRequest(entry_id="e-2"), metadata=signed(ADMIN)
    )

    assert response.entry.outcome == audit_pb2.OUTCOME_UNSPECIFIED
    assert response.entry.details["__unreadable__"] == "["


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        pytest.param(-1, 0, "start_sequence", id="negative-start"),
        pytest.param(0, -1, "end_sequence", id="negative-end"),
        pytest.param(5, 4, "end_sequence", id="end-before-start"),
    ],
)
async def test_a_malformed_range_is_refused(audit: Audit, start: int, end: int, field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await audit.verify(start, end)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    info = error_info(caught.value)
    assert info is not None
    assert info.metadata["field"] == field
