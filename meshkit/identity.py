"""Who is calling: the identity the gateway verified, passed to plugins as metadata.

The gateway authenticates a caller (a machine token or a JWT) and forwards the result in
two metadata entries: ``x-plugmesh-identity`` (compact JSON) and
``x-plugmesh-identity-signature`` (HMAC-SHA256 of it, hex). The HMAC key is derived from
the mesh registration secret, so a client that calls a plugin directly cannot forge an
identity; the gateway drops both entries when a client sends them. Without a secret (a
development setup), no identity can be verified and every caller is anonymous.

The identity is the whole truth about the caller: a plugin trusts its ``admin`` flag and
never looks a role up itself (ARCHITECTURE.md, "Authorization").
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from meshkit.errors import PermissionDenied, Unauthenticated
from meshkit.grpc_types import Context
from meshkit.permissions import Policy
from plugmesh.events.v1 import event_pb2

IDENTITY_KEY = "x-plugmesh-identity"
SIGNATURE_KEY = "x-plugmesh-identity-signature"
_KEY_LABEL = b"plugmesh identity v1"


class PrincipalKind(enum.Enum):
    """What kind of principal a caller is."""

    USER = "user"
    MACHINE = "machine"
    SERVICE = "service"


@dataclass(frozen=True)
class Identity:
    """A verified caller.

    Attributes:
        kind: A person, a machine user (API token) or a mesh service.
        subject: The user id, machine user id or service name.
        admin: Whether the caller has admin rights on the plugmesh API.
        email: The person's email, when known.
        permissions: The caller's permissions on MCP servers and tools, when the
            gateway knows them (a machine user's own, a person's user record); never
            sent in the signed metadata, and not part of equality.
    """

    kind: PrincipalKind
    subject: str
    admin: bool = False
    email: str = ""
    permissions: Policy | None = field(default=None, compare=False)


def signing_key(registration_secret: str | None) -> bytes | None:
    """The HMAC key for identities, derived from the mesh secret; None without one."""
    if not registration_secret:
        return None
    return hmac.new(registration_secret.encode(), _KEY_LABEL, hashlib.sha256).digest()


def to_metadata(identity: Identity, key: bytes) -> tuple[tuple[str, str], ...]:
    """The two metadata entries that carry ``identity``, signed with ``key``."""
    payload = json.dumps(
        {
            "kind": identity.kind.value,
            "sub": identity.subject,
            "admin": identity.admin,
            "email": identity.email,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    signature = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    return ((IDENTITY_KEY, payload), (SIGNATURE_KEY, signature))


def from_metadata(
    metadata: Iterable[tuple[str, str | bytes]] | None, key: bytes | None
) -> Identity | None:
    """Return the verified identity in ``metadata``, or None for an anonymous caller.

    Raises:
        Unauthenticated: an identity is present but its signature does not verify.
    """
    entries = {k: v for k, v in metadata or () if isinstance(v, str)}
    payload = entries.get(IDENTITY_KEY)
    if payload is None or key is None:
        return None
    expected = hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, entries.get(SIGNATURE_KEY, "")):
        raise Unauthenticated(
            "the caller's identity is not signed by the gateway", reason="IDENTITY_FORGED"
        )
    try:
        fields = json.loads(payload)
        return Identity(
            kind=PrincipalKind(fields["kind"]),
            subject=str(fields["sub"]),
            admin=bool(fields.get("admin", False)),
            email=str(fields.get("email", "")),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthenticated(
            "the caller's identity is malformed", reason="IDENTITY_MALFORMED"
        ) from exc


_ACTOR_TYPES = {
    PrincipalKind.USER: event_pb2.ACTOR_TYPE_USER,
    PrincipalKind.MACHINE: event_pb2.ACTOR_TYPE_MACHINE,
    PrincipalKind.SERVICE: event_pb2.ACTOR_TYPE_SERVICE,
}


def event_actor(identity: Identity) -> event_pb2.Actor:
    """The ``Actor`` an event records when ``identity`` made the change."""
    return event_pb2.Actor(
        type=_ACTOR_TYPES[identity.kind], id=identity.subject, display_name=identity.email
    )


def authenticated(identity: Identity | None, action: str) -> Identity:
    """``identity``, the caller of ``action`` (an RPC's name, or what it does).

    Raises:
        Unauthenticated: The caller is anonymous (no identity, or no mesh secret to
            verify one).
    """
    if identity is None:
        raise Unauthenticated(
            f"{action} needs an authenticated caller",
            reason="AUTHENTICATION_REQUIRED",
            metadata={"action": action},
        )
    return identity


def caller(context: Context, key: bytes | None, action: str) -> Identity:
    """The verified caller of the call ``context`` is for (see :func:`authenticated`).

    Raises:
        Unauthenticated: The caller is anonymous, or its identity is forged.
    """
    return authenticated(from_metadata(context.invocation_metadata(), key), action)


def is_admin(identity: Identity, *, services: bool = False) -> bool:
    """Whether ``identity`` has admin rights: its signed ``admin`` flag, never a role looked
    up by the plugin; with ``services``, where an API lets mesh services administer it,
    also a mesh service acting for itself."""
    return identity.admin or (services and identity.kind is PrincipalKind.SERVICE)


def require_admin(identity: Identity | None, action: str, *, services: bool = False) -> Identity:
    """``identity`` when it is an admin (:func:`is_admin`).

    Raises:
        Unauthenticated: The caller is anonymous.
        PermissionDenied: The caller is not an admin.
    """
    found = authenticated(identity, action)
    if not is_admin(found, services=services):
        raise PermissionDenied(
            f"{action} is for admins only", reason="ADMIN_REQUIRED", metadata={"action": action}
        )
    return found


_NOUNS = {
    PrincipalKind.USER: "user",
    PrincipalKind.MACHINE: "machine user",
    PrincipalKind.SERVICE: "service",
}


def require_self_or_admin(
    identity: Identity, action: str, kind: PrincipalKind, subject: str, *, field: str
) -> Identity:
    """``identity`` when it is the principal ``subject`` of ``kind`` itself, or an admin
    (mesh services included): the rule of the RPCs where a caller acts on its own record.

    Raises:
        PermissionDenied: The caller is someone else and not an admin (reason NOT_SELF;
            the metadata names ``field`` with ``subject``).
    """
    if identity.kind is kind and identity.subject == subject:
        return identity
    if not is_admin(identity, services=True):
        raise PermissionDenied(
            f"{action}: only admins may act for another {_NOUNS[kind]} than themselves",
            reason="NOT_SELF",
            metadata={"rpc": action, field: subject},
        )
    return identity
