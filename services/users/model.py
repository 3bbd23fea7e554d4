"""The users plugin's domain: users and what a change is.

A user's role and permissions are the toolkit's permission model
(:mod:`meshkit.permissions`), which machine users share. Nothing here knows protobuf or
SQL: :mod:`services.users.convert` translates to and from the wire,
:mod:`services.users.store` to and from rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field

from meshkit.identity import Identity, PrincipalKind
from meshkit.permissions import Policy, Role

__all__ = [
    "MAX_DISPLAY_NAME_LENGTH",
    "MAX_EMAIL_LENGTH",
    "MAX_USER_ID_LENGTH",
    "SERVICE_ACTOR",
    "NewUser",
    "User",
    "UserChanges",
    "email_key",
]

MAX_USER_ID_LENGTH = 128
MAX_EMAIL_LENGTH = 320
MAX_DISPLAY_NAME_LENGTH = 256


#: The users plugin itself, when it provisions a user from an auth event.
SERVICE_ACTOR = Identity(PrincipalKind.SERVICE, "users")


@dataclass(frozen=True)
class User:
    """A stored user.

    Attributes:
        user_id: Stable identifier (the identity provider's subject, or chosen on create).
        email: Email address; empty when unknown.
        display_name: Name for humans.
        role: Rights on the plugmesh API.
        policy: Permissions on MCP servers and tools.
        create_time: When the user was created (UTC).
        update_time: When a field last changed (UTC); logins do not count.
        last_login_time: When an ``auth.login`` was last seen (UTC), or None.
        revision: 1 at creation, one more on every change.
        seq: Position in creation order; unique for the lifetime of the database, so a
            user deleted and created again under the same id is a different record.
    """

    user_id: str
    email: str
    display_name: str
    role: Role
    policy: Policy
    create_time: dt.datetime
    update_time: dt.datetime
    last_login_time: dt.datetime | None
    revision: int
    seq: int

    @property
    def etag(self) -> str:
        """Opaque version for optimistic concurrency (AIP-154)."""
        digest = hashlib.sha256(f"{self.seq}:{self.revision}".encode()).hexdigest()
        return digest[:20]


@dataclass(frozen=True)
class NewUser:
    """What a create needs; the store adds times, revision and sequence."""

    user_id: str
    email: str = ""
    display_name: str = ""
    role: Role = Role.USER
    policy: Policy = field(default_factory=Policy)
    last_login_time: dt.datetime | None = None


@dataclass(frozen=True)
class UserChanges:
    """New values for some fields of a user; None leaves a field as it is."""

    email: str | None = None
    display_name: str | None = None
    role: Role | None = None
    policy: Policy | None = None

    def changed_fields(self, user: User) -> tuple[str, ...]:
        """The API names of the fields whose new value differs from ``user``'s, in order."""
        pairs = (
            ("email", self.email, user.email),
            ("display_name", self.display_name, user.display_name),
            ("role", self.role, user.role),
            ("permissions", self.policy, user.policy),
        )
        return tuple(name for name, new, old in pairs if new is not None and new != old)

    def only(self, names: tuple[str, ...]) -> UserChanges:
        """These changes restricted to the fields named (API names)."""
        return UserChanges(
            email=self.email if "email" in names else None,
            display_name=self.display_name if "display_name" in names else None,
            role=self.role if "role" in names else None,
            policy=self.policy if "permissions" in names else None,
        )


def email_key(email: str) -> str | None:
    """The form emails are compared in (case-insensitive), or None when there is none."""
    return email.strip().lower() or None
