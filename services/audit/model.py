"""The audit log's domain: entries, who acted, what a reader may see, what verify found.

Nothing here knows protobuf or SQL: :mod:`services.audit.convert` translates messages into
these objects and :mod:`services.audit.store` persists them. Times are aware UTC datetimes
with microsecond precision (what every supported database keeps).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = [
    "Actor",
    "ActorType",
    "BreakReason",
    "ChainBreak",
    "Entry",
    "EntryDraft",
    "EntryFilter",
    "JsonValue",
    "Outcome",
    "PruneResult",
    "Verification",
    "Visibility",
]

#: A JSON value as :func:`json.loads` returns it.
JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"


class ActorType(enum.Enum):
    """What kind of principal acted (``plugmesh.events.v1.ActorType``)."""

    UNSPECIFIED = "unspecified"
    USER = "user"
    MACHINE = "machine"
    SYSTEM = "system"
    SERVICE = "service"
    ANONYMOUS = "anonymous"


class Outcome(enum.Enum):
    """How the audited action ended (``plugmesh.audit.v1.Outcome``)."""

    UNSPECIFIED = "unspecified"
    SUCCESS = "success"
    FAILURE = "failure"
    DENIED = "denied"
    UNKNOWN = "unknown"


class BreakReason(enum.Enum):
    """How the chain is broken at an entry (``plugmesh.audit.v1.BreakReason``)."""

    HASH_MISMATCH = "hash_mismatch"
    PREVIOUS_HASH_MISMATCH = "previous_hash_mismatch"
    SEQUENCE_GAP = "sequence_gap"


@dataclass(frozen=True)
class Actor:
    """Who acted: a kind of principal and its id; the display name is for people only."""

    type: ActorType = ActorType.UNSPECIFIED
    id: str = ""
    display_name: str = ""


@dataclass(frozen=True)
class EntryDraft:
    """An entry as a writer describes it, before the chain gives it a place and a hash.

    ``occur_time`` of ``None`` means "when it is recorded".
    """

    entry_id: str
    action: str
    actor: Actor = field(default_factory=Actor)
    occur_time: dt.datetime | None = None
    resource: str = ""
    outcome: Outcome = Outcome.UNSPECIFIED
    details: Mapping[str, JsonValue] = field(default_factory=dict)
    ip_address: str = ""
    user_agent: str = ""
    request_id: str = ""
    trace_id: str = ""
    source: str = ""


@dataclass(frozen=True)
class Entry:
    """A stored entry: a draft with its sequence, record time and hashes."""

    sequence: int
    entry_id: str
    occur_time: dt.datetime
    record_time: dt.datetime
    actor: Actor
    action: str
    resource: str
    outcome: Outcome
    details: Mapping[str, JsonValue]
    ip_address: str
    user_agent: str
    request_id: str
    trace_id: str
    source: str
    hash: str
    previous_hash: str


@dataclass(frozen=True)
class EntryFilter:
    """Which entries a List or Export wants; every criterion that is set must match.

    ``action`` is a glob in which ``*`` matches any run of characters. ``start_time`` is
    inclusive, ``end_time`` exclusive; both compare with the occur time.
    """

    user_id: str = ""
    actor_type: ActorType = ActorType.UNSPECIFIED
    action: str = ""
    resource: str = ""
    outcome: Outcome = Outcome.UNSPECIFIED
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None


@dataclass(frozen=True)
class Visibility:
    """Which entries a reader may see: all of them, or those about the reader.

    An entry is about the reader when its actor is ``actor`` or its resource is one of
    ``resources``.
    """

    everything: bool = False
    actor: Actor | None = None
    resources: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link: where, and how.

    For a gap, ``sequence`` is the first missing sequence and ``entry_id`` the entry
    found after the gap (empty when the gap is at the end of the chain).
    """

    entry_id: str
    sequence: int
    reason: BreakReason
    message: str


@dataclass(frozen=True)
class Verification:
    """What verifying a range of the chain found.

    Attributes:
        entries_checked: Entries read and checked, the broken one included.
        head_hash: Hash of the last intact entry checked (or of the anchor the check
            started from); empty when there was none.
        broken: The first broken link, ``None`` when the range is intact.
    """

    entries_checked: int
    head_hash: str
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        """True when no link is broken."""
        return self.broken is None


@dataclass(frozen=True)
class PruneResult:
    """What a pruning pass removed: entries up to ``through_sequence``, whose hash is kept."""

    removed: int
    through_sequence: int
    anchor_hash: str
