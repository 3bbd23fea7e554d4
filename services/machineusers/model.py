"""The machine-users plugin's domain: machine users, their tokens as stored, and answers.

Nothing here knows protobuf or SQL: :mod:`services.machineusers.convert` translates to
and from the wire, :mod:`services.machineusers.store` to and from rows. Permissions and
roles are the toolkit's permission model (:mod:`meshkit.permissions`): a machine user is
governed by the same rules as a person.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from dataclasses import dataclass, field

from meshkit.permissions import Policy, Role

__all__ = [
    "MAX_DESCRIPTION_LENGTH",
    "MAX_GRACE",
    "MAX_NAME_LENGTH",
    "InvalidReason",
    "MachineUser",
    "MachineUserChanges",
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
        revision: 1 at creation, one more on every update and token rotation (not on
            a use: the last-used time is bookkeeping).
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
    revision: int = 1

    @property
    def etag(self) -> str:
        """Opaque version for optimistic concurrency (AIP-154), as the users plugin's:
        the sequence number keeps a machine user deleted and created again under the
        same name from matching."""
        digest = hashlib.sha256(f"{self.seq}:{self.revision}".encode()).hexdigest()
        return digest[:20]

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
class MachineUserChanges:
    """New values for some fields of a machine user; None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    role: Role | None = None
    policy: Policy | None = None

    def changed_fields(self, user: MachineUser) -> tuple[str, ...]:
        """The API names of the fields whose new value differs from ``user``'s, in order."""
        pairs = (
            ("name", self.name, user.name),
            ("description", self.description, user.description),
            ("role", self.role, user.role),
            ("permissions", self.policy, user.policy),
        )
        return tuple(name for name, new, old in pairs if new is not None and new != old)

    def only(self, names: tuple[str, ...]) -> MachineUserChanges:
        """These changes restricted to the fields named (API names)."""
        return MachineUserChanges(
            name=self.name if "name" in names else None,
            description=self.description if "description" in names else None,
            role=self.role if "role" in names else None,
            policy=self.policy if "permissions" in names else None,
        )


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
