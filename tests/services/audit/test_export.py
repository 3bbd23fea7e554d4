"""ExportAuditEntries streams every matching entry, oldest first, and resumes by sequence."""

from __future__ import annotations

import asyncio

import pytest

from plugmesh.audit.v1 import audit_pb2
from tests.services.audit.conftest import ADMIN, Audit, append_many, signed


async def export(audit: Audit, **fields: object) -> list[audit_pb2.AuditEntry]:
    request = audit_pb2.ExportAuditEntriesRequest(**fields)  # type: ignore[arg-type]  # test shorthand
    return [
        response.entry
        async for response in audit.stub.ExportAuditEntries(request, metadata=signed(ADMIN))
    ]


async def seed(audit: Audit) -> None:
    # Interleaved, and more than one read batch of each.
    for _ in range(2):
        await append_many(audit, 600, resource="users/alice")
        await append_many(audit, 400, resource="users/bob")


@pytest.mark.parametrize(
    ("filters", "count"),
    [
        pytest.param({}, 2000, id="everything"),
        pytest.param({"resource": "users/alice"}, 1200, id="resource"),
        pytest.param({"resource": "users/bob", "action": "bulk.*"}, 800, id="resource-and-action"),
        pytest.param({"action": "nothing.*"}, 0, id="none"),
        pytest.param({"after_sequence": 1500}, 500, id="after-sequence"),
        pytest.param({"after_sequence": 1500, "resource": "users/bob"}, 400, id="resume-filtered"),
    ],
)
async def test_export_streams_every_matching_entry_oldest_first(
    audit: Audit, filters: dict[str, object], count: int
) -> None:
    await seed(audit)

    entries = await export(audit, **filters)

    assert len(entries) == count
    sequences = [entry.sequence for entry in entries]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == count
    if "resource" in filters:
        assert {entry.resource for entry in entries} == {filters["resource"]}
    if count:
        assert sequences[0] > int(filters.get("after_sequence", 0))  # type: ignore[call-overload]  # int or absent


async def test_an_export_ends_while_entries_keep_arriving(audit: Audit) -> None:
    await append_many(audit, 1500)
    stop = asyncio.Event()

    async def keep_appending() -> None:
        while not stop.is_set():
            await append_many(audit, 50)
            await asyncio.sleep(0)

    writer = asyncio.create_task(keep_appending())
    try:
        entries = await export(audit)
    finally:
        stop.set()
        await writer
    sequences = [entry.sequence for entry in entries]
    assert sequences[:1500] == list(range(1, 1501))
    assert sequences == list(range(1, len(sequences) + 1))
