"""The machine-users plugin's domain: machine users, their tokens as stored, and answers.

Nothing here knows protobuf or SQL: :mod:`services.machineusers.convert` translates to
and from the wire, :mod:`services.machineusers.store` to and from rows. Permissions and
roles are the toolkit's permission model (:mod:`meshkit.permissions`): a machine user is
governed by the same rules as a person.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from meshkit.permissions import Policy, Role

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_GRACE",
    "MAX_NAME_LENGTH",
    "InvalidReason",
    "MachineUser",
    "NewMachineUser",
    "Rotation",
    "TokenInfo",
    "Validation",
]

MAX_NAME_LENGTH = 128
MAX_DESCRIPTION_LENGTH = 1024
#: Longest grace period of a rotation (the contract's "at most 7 days").
MAX_GRACE = dt.timedelta(days=7)


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown of a machine user's current token."""

    prefix: str
    last_four: str
    issue_time: dt.datetime
    previous_token_expire_time: dt.datetime | None = None


@dataclass(frozen=True)
class MachineUser:
    """A stored machine user, without any secret.

    Attributes:
        machine_user_id: Identifier assigned at creation.
        name: Unique name.
        description: What it is for.
        role: Rights on the plugmesh API.
        policy: Permissions on MCP servers and tools.
        expire_time: When it and its tokens stop working; None for never.
        token: Its current token's recognisable parts.
        create_time: When it was created.
        last_used_time: When a token of it was last validated (throttled), or None.
        creator_id: Who created it.
        seq: Position in creation order, never reused (keyset paging).
    """

    machine_user_id: str
    name: str
    description: str
    role: Role
    policy: Policy
    expire_time: dt.datetime | None
    token: TokenInfo
    create_time: dt.datetime
    last_used_time: dt.datetime | None
    creator_id: str
    seq: int

    def expired(self, now: dt.datetime) -> bool:
        """Whether it has expired at ``now``."""
        return self.expire_time is not None and self.expire_time <= now


@dataclass(frozen=True)
class NewMachineUser:
    """What a create needs; the core adds the id, token and times."""

    name: str
    description: str = ""
    role: Role = Role.USER
    policy: Policy = field(default_factory=Policy)
    expire_time: dt.datetime | None = None
    ttl: dt.timedelta | None = None


@dataclass(frozen=True)
class Rotation:
    """A rotation's outcome: the machine user with its new token, and that token."""

    machine_user: MachineUser
    token: str
    previous_token_expire_time: dt.datetime

    def __repr__(self) -> str:
        return f"Rotation(machine_user={self.machine_user.machine_user_id!r})"


class InvalidReason(enum.Enum):
    """Why a token is not valid."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Validation:
    """The answer to "is this token valid?".

    Attributes:
        machine_user: Whose token it is; set only when valid.
        reason: Why not, when not valid.
        expire_time: When this token stops working (the machine user's expiry or the
            end of the token's grace period), None for never; set only when valid.
    """

    machine_user: MachineUser | None = None
    reason: InvalidReason | None = None
    expire_time: dt.datetime | None = None

    @property
    def valid(self) -> bool:
        """Whether the token authenticates a machine user."""
        return self.machine_user is not None
