"""What a caller presents: ``Authorization: Bearer <credential>``, told apart by its form.

A credential starting with ``pmk_`` is a machine token (checked by the machine-users
service); anything else is taken for a JWT. The credential itself is kept out of every
``repr``, log line and event: :func:`fingerprint` is what may be recorded.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from gateway.auth.errors import AuthFailed
from plugmesh.events.v1 import auth_events_pb2

__all__ = ["MACHINE_TOKEN_PREFIX", "Credential", "CredentialKind", "fingerprint", "parse_header"]

MACHINE_TOKEN_PREFIX = "pmk_"
_MAX_LENGTH = 8192


class CredentialKind(enum.Enum):
    """The two kinds of bearer credentials."""

    MACHINE_TOKEN = auth_events_pb2.CREDENTIAL_TYPE_MACHINE_TOKEN
    JWT = auth_events_pb2.CREDENTIAL_TYPE_JWT


@dataclass(frozen=True)
class Credential:
    """A presented bearer credential."""

    kind: CredentialKind
    secret: str

    def __repr__(self) -> str:
        return f"Credential({self.kind.name}, fingerprint={fingerprint(self.secret)})"

    @property
    def event_type(self) -> auth_events_pb2.CredentialType.ValueType:
        """The ``CredentialType`` of ``auth.failed``."""
        return auth_events_pb2.CredentialType.ValueType(self.kind.value)


def fingerprint(secret: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``secret``: correlates attempts, reveals
    nothing."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def parse_header(value: str | None) -> Credential | None:
    """The credential in an ``Authorization`` header value; None when there is none.

    Raises:
        AuthFailed: The header is not ``Bearer <credential>`` (MALFORMED).
    """
    if value is None or not value.strip():
        return None
    scheme, _, secret = value.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret or " " in secret or len(secret) > _MAX_LENGTH:
        raise AuthFailed(
            'the Authorization header must be "Bearer <token>"',
            failure=auth_events_pb2.AUTH_FAILURE_REASON_MALFORMED,
        )
    if secret.startswith(MACHINE_TOKEN_PREFIX):
        return Credential(CredentialKind.MACHINE_TOKEN, secret)
    return Credential(CredentialKind.JWT, secret)
