"""The hash chain: the canonical form of an entry, its hash, and walking a chain to check it.

An entry's hash is the lower-case hex SHA-256 of::

    previous_hash (hex, "" for the first entry) + "\\n" + canonical form

The canonical form (version 1) is the UTF-8 JSON object of every other field, with sorted
keys, no whitespace and non-ASCII characters kept as they are::

    {"action":…,"actor":{"display_name":…,"id":…,"type":"user"},"details":{…},
     "entry_id":…,"ip_address":…,"occur_time":"2026-01-02T03:04:05.000006Z",
     "outcome":"success","record_time":…,"request_id":…,"resource":…,"sequence":7,
     "source":…,"trace_id":…,"user_agent":…,"v":1}

Enums are their lower-case names, times RFC 3339 in UTC with exactly six fractional
digits, details the JSON value as stored. The sequence is inside the hash, so moving an
entry breaks it as surely as editing it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping

from services.audit.model import (
    BreakReason,
    ChainBreak,
    Entry,
    EntryDraft,
    JsonValue,
    Verification,
)

__all__ = [
    "CANONICAL_VERSION",
    "ChainWalker",
    "canonical_form",
    "canonical_json",
    "entry_hash",
    "format_time",
    "seal",
]

CANONICAL_VERSION = 1


def format_time(time: dt.datetime) -> str:
    """RFC 3339 in UTC with six fractional digits: ``2026-01-02T03:04:05.000006Z``."""
    return time.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Mapping[str, JsonValue] | JsonValue) -> str:
    """``value`` as compact JSON with sorted keys; NaN and infinities are refused."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_form(entry: Entry) -> bytes:
    """The bytes of ``entry`` that its hash covers, besides the previous hash."""
    content: dict[str, JsonValue] = {
        "v": CANONICAL_VERSION,
        "sequence": entry.sequence,
        "entry_id": entry.entry_id,
        "occur_time": format_time(entry.occur_time),
        "record_time": format_time(entry.record_time),
        "actor": {
            "type": entry.actor.type.value,
            "id": entry.actor.id,
            "display_name": entry.actor.display_name,
        },
        "action": entry.action,
        "resource": entry.resource,
        "outcome": entry.outcome.value,
        "details": dict(entry.details),
        "ip_address": entry.ip_address,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
        "trace_id": entry.trace_id,
        "source": entry.source,
    }
    return canonical_json(content).encode("utf-8")


def entry_hash(entry: Entry) -> str:
    """The hash ``entry`` should carry, from its content and its ``previous_hash``."""
    digest = hashlib.sha256(entry.previous_hash.encode("ascii"))
    digest.update(b"\n")
    digest.update(canonical_form(entry))
    return digest.hexdigest()


def seal(
    draft: EntryDraft, *, sequence: int, record_time: dt.datetime, previous_hash: str
) -> Entry:
    """Give ``draft`` its place in the chain: sequence, record time and hashes."""
    record_time = _utc(record_time)
    entry = Entry(
        sequence=sequence,
        entry_id=draft.entry_id,
        occur_time=_utc(draft.occur_time or record_time),
        record_time=record_time,
        actor=draft.actor,
        action=draft.action,
        resource=draft.resource,
        outcome=draft.outcome,
        details=dict(draft.details),
        ip_address=draft.ip_address,
        user_agent=draft.user_agent,
        request_id=draft.request_id,
        trace_id=draft.trace_id,
        source=draft.source,
        hash="",
        previous_hash=previous_hash,
    )
    return dataclasses.replace(entry, hash=entry_hash(entry))


class ChainWalker:
    """Checks entries handed to it in sequence order, from a known starting link.

    Args:
        next_sequence: The sequence the first entry must have.
        previous_hash: The hash the first entry must link to ("" at the very start).
    """

    def __init__(self, next_sequence: int, previous_hash: str) -> None:
        self._expected = next_sequence
        self._previous = previous_hash
        self._last_id = ""
        self.checked = 0
        self.broken: ChainBreak | None = None

    @property
    def next_sequence(self) -> int:
        """The sequence the next entry must have."""
        return self._expected

    @property
    def head_hash(self) -> str:
        """The hash of the last intact entry (or the starting link)."""
        return self._previous

    def check(self, entry: Entry) -> bool:
        """Check one entry; return False (and set :attr:`broken`) at the first break."""
        if self.broken is not None:
            return False
        self.checked += 1
        if entry.sequence != self._expected:
            return self._gap(entry.entry_id, entry.sequence)
        computed = entry_hash(entry)
        if computed != entry.hash:
            return self._break(
                entry.entry_id,
                entry.sequence,
                BreakReason.HASH_MISMATCH,
                f"entry {entry.entry_id!r} (sequence {entry.sequence}) hashes to {computed}"
                f" but stores {entry.hash}: its content was changed",
            )
        if entry.previous_hash != self._previous:
            return self._break(
                entry.entry_id,
                entry.sequence,
                BreakReason.PREVIOUS_HASH_MISMATCH,
                f"entry {entry.entry_id!r} (sequence {entry.sequence}) links to"
                f" {entry.previous_hash or '(nothing)'} but the entry before it has hash"
                f" {self._previous or '(none)'}: an entry was replaced or reordered",
            )
        self._expected += 1
        self._previous = entry.hash
        self._last_id = entry.entry_id
        return True

    def reject(self, sequence: int, entry_id: str, problem: str) -> bool:
        """Count an entry whose stored form no writer can produce as changed; return False."""
        if self.broken is not None:
            return False
        self.checked += 1
        if sequence != self._expected:
            return self._gap(entry_id, sequence)
        return self._break(
            entry_id, sequence, BreakReason.HASH_MISMATCH, f"{problem}: its content was changed"
        )

    def end(self, head_sequence: int, head_hash: str) -> None:
        """Check that the walk reached the chain's recorded head: nothing removed at the end.

        Call after the last entry when the walk was meant to reach the head.
        """
        if self.broken is not None:
            return
        last = self._expected - 1
        if head_sequence > last:
            self._break(
                "",
                self._expected,
                BreakReason.SEQUENCE_GAP,
                f"sequences {self._expected} to {head_sequence} are missing at the end of"
                " the chain",
            )
        elif head_sequence == last and head_hash != self._previous:
            self._break(
                self._last_id,
                last,
                BreakReason.PREVIOUS_HASH_MISMATCH,
                f"the last entry, {self._last_id!r} (sequence {last}), has hash"
                f" {self._previous or '(none)'} but the chain head records {head_hash}:"
                " it was replaced",
            )

    def result(self) -> Verification:
        """What the walk found."""
        return Verification(
            entries_checked=self.checked, head_hash=self._previous, broken=self.broken
        )

    def _gap(self, entry_id: str, sequence: int) -> bool:
        return self._break(
            entry_id,
            self._expected,
            BreakReason.SEQUENCE_GAP,
            f"sequence {self._expected} is missing: the next entry, {entry_id!r}, has"
            f" sequence {sequence}",
        )

    def _break(self, entry_id: str, sequence: int, reason: BreakReason, message: str) -> bool:
        self.broken = ChainBreak(entry_id, sequence, reason, message)
        return False


def _utc(time: dt.datetime) -> dt.datetime:
    if time.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return time.astimezone(dt.UTC)
