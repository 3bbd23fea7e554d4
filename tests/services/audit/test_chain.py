"""The hash chain on its own: canonical form, hashes, and the walker's verdicts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from collections.abc import Callable

import pytest

from services.audit.chain import ChainWalker, canonical_form, entry_hash, format_time, seal
from services.audit.model import (
    Actor,
    ActorType,
    BreakReason,
    Entry,
    EntryDraft,
    Outcome,
)

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)


def chain_of(count: int) -> list[Entry]:
    entries: list[Entry] = []
    previous = ""
    for index in range(1, count + 1):
        draft = EntryDraft(
            entry_id=f"e-{index}",
            action="user.updated",
            actor=Actor(ActorType.USER, "alice", "Alice"),
            resource=f"users/u-{index}",
            outcome=Outcome.SUCCESS,
            details={"n": index, "nested": {"ünïcode": ["a", 1.5, None, True]}},
        )
        entry = seal(draft, sequence=index, record_time=T0, previous_hash=previous)
        entries.append(entry)
        previous = entry.hash
    return entries


def test_canonical_form_is_sorted_compact_utf8_json() -> None:
    entry = chain_of(1)[0]
    form = canonical_form(entry).decode("utf-8")

    assert form.startswith('{"action":"user.updated","actor":{"display_name":"Alice"')
    assert '"occur_time":"2026-01-02T03:04:05.000006Z"' in form
    assert '"ünïcode"' in form
    assert " " not in form.replace("Alice", "")
    assert form.endswith('"v":1}')


def test_hash_covers_previous_hash_and_canonical_form() -> None:
    first, second = chain_of(2)

    assert first.previous_hash == ""
    assert second.previous_hash == first.hash
    expected = hashlib.sha256(first.hash.encode() + b"\n" + canonical_form(second)).hexdigest()
    assert second.hash == expected == entry_hash(second)


def test_occur_time_defaults_to_record_time() -> None:
    entry = seal(EntryDraft(entry_id="x", action="a"), sequence=1, record_time=T0, previous_hash="")
    assert entry.occur_time == entry.record_time == T0
    assert format_time(T0.astimezone(dt.timezone(dt.timedelta(hours=2)))) == format_time(T0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        seal(
            EntryDraft(entry_id="x", action="a"),
            sequence=1,
            record_time=T0.replace(tzinfo=None),
            previous_hash="",
        )


Tamper = Callable[[list[Entry]], list[Entry]]


def _edit(index: int, **changes: object) -> Tamper:
    def tamper(entries: list[Entry]) -> list[Entry]:
        entries[index] = dataclasses.replace(entries[index], **changes)  # type: ignore[arg-type]  # test edits any field
        return entries

    return tamper


def _rehash(index: int, **changes: object) -> Tamper:
    """An edit whose hash is recomputed: only the next link shows it."""

    def tamper(entries: list[Entry]) -> list[Entry]:
        edited = dataclasses.replace(entries[index], **changes)  # type: ignore[arg-type]  # test edits any field
        entries[index] = dataclasses.replace(edited, hash=entry_hash(edited))
        return entries

    return tamper


def _drop(index: int) -> Tamper:
    def tamper(entries: list[Entry]) -> list[Entry]:
        del entries[index]
        return entries

    return tamper


def _swap(first: int, second: int) -> Tamper:
    def tamper(entries: list[Entry]) -> list[Entry]:
        a, b = entries[first], entries[second]
        entries[first] = dataclasses.replace(b, sequence=a.sequence)
        entries[second] = dataclasses.replace(a, sequence=b.sequence)
        return entries

    return tamper


@pytest.mark.parametrize(
    ("tamper", "entry_id", "sequence", "reason"),
    [
        pytest.param(
            _edit(2, action="user.deleted"), "e-3", 3, BreakReason.HASH_MISMATCH, id="action"
        ),
        pytest.param(
            _edit(2, actor=Actor(ActorType.USER, "mallory")),
            "e-3",
            3,
            BreakReason.HASH_MISMATCH,
            id="actor",
        ),
        pytest.param(
            _edit(2, details={"n": 99}), "e-3", 3, BreakReason.HASH_MISMATCH, id="details"
        ),
        pytest.param(
            _edit(0, occur_time=T0 + dt.timedelta(microseconds=1)),
            "e-1",
            1,
            BreakReason.HASH_MISMATCH,
            id="time",
        ),
        pytest.param(
            _edit(4, outcome=Outcome.FAILURE), "e-5", 5, BreakReason.HASH_MISMATCH, id="last"
        ),
        pytest.param(
            _rehash(2, resource="users/other"),
            "e-4",
            4,
            BreakReason.PREVIOUS_HASH_MISMATCH,
            id="rehashed",
        ),
        pytest.param(_drop(2), "e-4", 3, BreakReason.SEQUENCE_GAP, id="dropped-middle"),
        pytest.param(_drop(0), "e-2", 1, BreakReason.SEQUENCE_GAP, id="dropped-first"),
        pytest.param(_swap(1, 2), "e-3", 2, BreakReason.HASH_MISMATCH, id="swapped"),
    ],
)
def test_walker_names_the_first_broken_link(
    tamper: Tamper, entry_id: str, sequence: int, reason: BreakReason
) -> None:
    walker = ChainWalker(1, "")
    for entry in tamper(chain_of(5)):
        if not walker.check(entry):
            break
    walker.end(5, chain_of(5)[-1].hash)

    result = walker.result()
    assert not result.intact
    assert result.broken is not None
    assert (result.broken.entry_id, result.broken.sequence, result.broken.reason) == (
        entry_id,
        sequence,
        reason,
    )
    assert result.broken.message


def test_an_intact_chain_verifies_with_its_head_hash() -> None:
    entries = chain_of(5)
    walker = ChainWalker(1, "")
    assert all(walker.check(entry) for entry in entries)
    walker.end(5, entries[-1].hash)

    result = walker.result()
    assert result.intact
    assert result.entries_checked == 5
    assert result.head_hash == entries[-1].hash


@pytest.mark.parametrize(
    ("head_sequence", "head_hash", "sequence", "reason"),
    [
        pytest.param(6, "f" * 64, 6, BreakReason.SEQUENCE_GAP, id="last-removed"),
        pytest.param(5, "f" * 64, 5, BreakReason.PREVIOUS_HASH_MISMATCH, id="last-replaced"),
    ],
)
def test_the_end_of_the_walk_is_checked_against_the_head(
    head_sequence: int, head_hash: str, sequence: int, reason: BreakReason
) -> None:
    walker = ChainWalker(1, "")
    for entry in chain_of(5):
        walker.check(entry)
    walker.end(head_sequence, head_hash)

    broken = walker.result().broken
    assert broken is not None
    assert (broken.sequence, broken.reason) == (sequence, reason)


def test_a_walk_can_start_from_an_anchor() -> None:
    entries = chain_of(5)
    walker = ChainWalker(3, entries[1].hash)
    assert all(walker.check(entry) for entry in entries[2:])
    assert walker.result().entries_checked == 3
