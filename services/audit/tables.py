"""The audit plugin's tables, the migrations that make them, and how a row reads as an
entry.

``audit_entries`` holds the chain; ``audit_chain`` holds one row: the head (sequence and
hash of the newest entry) and the pruning anchor (sequence and hash of the newest entry
that retention removed). Appending locks that row, which gives entries a total order on
every database, and the head lets verify notice entries removed from the end.

Times are stored as naive UTC (:func:`meshkit.db.naive_utc`); details as the canonical
JSON the hash covers.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TypeVar

from sqlalchemy import BigInteger, DateTime, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from meshkit.db import aware_utc, naive_utc
from meshkit.migrations import Migrations
from services.audit.chain import canonical_json
from services.audit.model import Actor, ActorType, Entry, JsonValue, Outcome

__all__ = [
    "CHAIN_ROW_ID",
    "MIGRATIONS",
    "ChainRow",
    "EntryRow",
    "MalformedRow",
    "entry_of",
    "metadata",
    "row_of",
]

metadata = MetaData()

#: The revisions that make the tables, applied at start (:meth:`meshkit.db.Database.attach`).
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_audit", metadata)

CHAIN_ROW_ID = 1


class _Base(DeclarativeBase):
    metadata = metadata


class EntryRow(_Base):
    """One entry of the chain."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        # Each filter's index ends in the sequence, so a page is a range scan in order.
        Index("ix_audit_entries_actor_sequence", "actor_id", "sequence"),
        Index("ix_audit_entries_resource_sequence", "resource", "sequence"),
        Index("ix_audit_entries_action_sequence", "action", "sequence"),
    )

    sequence: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    entry_id: Mapped[str] = mapped_column(String, unique=True)
    occur_time: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    record_time: Mapped[dt.datetime] = mapped_column(DateTime, index=True)
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String)
    actor_display_name: Mapped[str] = mapped_column(String)
    action: Mapped[str] = mapped_column(String)
    resource: Mapped[str] = mapped_column(String)
    outcome: Mapped[str] = mapped_column(String(16))
    details: Mapped[str] = mapped_column(Text)
    ip_address: Mapped[str] = mapped_column(String)
    user_agent: Mapped[str] = mapped_column(String)
    request_id: Mapped[str] = mapped_column(String)
    trace_id: Mapped[str] = mapped_column(String)
    source: Mapped[str] = mapped_column(String)
    hash: Mapped[str] = mapped_column(String(64))
    previous_hash: Mapped[str] = mapped_column(String(64))


class ChainRow(_Base):
    """The chain's head and pruning anchor; a single row with id 1."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    head_sequence: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    anchor_sequence: Mapped[int] = mapped_column(BigInteger)
    anchor_hash: Mapped[str] = mapped_column(String(64))


def row_of(entry: Entry) -> EntryRow:
    """The row that stores ``entry``."""
    return EntryRow(
        sequence=entry.sequence,
        entry_id=entry.entry_id,
        occur_time=naive_utc(entry.occur_time),
        record_time=naive_utc(entry.record_time),
        actor_type=entry.actor.type.value,
        actor_id=entry.actor.id,
        actor_display_name=entry.actor.display_name,
        action=entry.action,
        resource=entry.resource,
        outcome=entry.outcome.value,
        details=canonical_json(dict(entry.details)),
        ip_address=entry.ip_address,
        user_agent=entry.user_agent,
        request_id=entry.request_id,
        trace_id=entry.trace_id,
        source=entry.source,
        hash=entry.hash,
        previous_hash=entry.previous_hash,
    )


class MalformedRow(ValueError):
    """A stored row holds a value no entry can have: it was changed outside the plugin."""


def entry_of(row: EntryRow, *, strict: bool = False) -> Entry:
    """The entry a row stores, exactly as stored (verify recomputes its hash from this).

    Args:
        row: The stored row.
        strict: Raise on a value outside the known enums or details that are not a JSON
            object; otherwise such values read as "unspecified" and as the raw text, so a
            tampered row stays readable until verify reports it.

    Raises:
        MalformedRow: ``strict`` and the row holds such a value.
    """
    problems: list[str] = []
    actor_type = _enum(ActorType, row.actor_type, ActorType.UNSPECIFIED, problems, "actor_type")
    outcome = _enum(Outcome, row.outcome, Outcome.UNSPECIFIED, problems, "outcome")
    details = _details(row.details, problems)
    if strict and problems:
        raise MalformedRow(
            f"entry {row.entry_id!r} (sequence {row.sequence}): {'; '.join(problems)}"
        )
    return Entry(
        sequence=row.sequence,
        entry_id=row.entry_id,
        occur_time=aware_utc(row.occur_time),
        record_time=aware_utc(row.record_time),
        actor=Actor(type=actor_type, id=row.actor_id, display_name=row.actor_display_name),
        action=row.action,
        resource=row.resource,
        outcome=outcome,
        details=details,
        ip_address=row.ip_address,
        user_agent=row.user_agent,
        request_id=row.request_id,
        trace_id=row.trace_id,
        source=row.source,
        hash=row.hash,
        previous_hash=row.previous_hash,
    )


_E = TypeVar("_E", ActorType, Outcome)


def _enum(cls: type[_E], value: str, default: _E, problems: list[str], name: str) -> _E:
    try:
        return cls(value)
    except ValueError:
        problems.append(f"{name} {value!r} is not a known value")
        return default


def _details(text: str, problems: list[str]) -> dict[str, JsonValue]:
    try:
        details = json.loads(text)
        canonical_json(details)
    except ValueError as exc:
        problems.append(f"details are not canonical JSON: {exc}")
        return {"__unreadable__": text}
    if not isinstance(details, dict):
        problems.append("details are not a JSON object")
        return {"__unreadable__": text}
    return details
