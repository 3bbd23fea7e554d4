"""Who calls the MCP endpoint: the gateway's authentication, in the form the SDK expects.

The front authenticates each request with the gateway's own guard
(:meth:`gateway.auth.HttpGuard.identify`: machine tokens and JWTs, the same cache, the
same ``auth.failed`` and ``auth.login`` events) before the SDK sees it, and puts the
verified caller (with their permissions on MCP tools) in ``scope["user"]`` as the SDK's
``AuthenticatedUser``: the SDK reads the principal there, and the handlers read it back
with :func:`caller_of`. The access
token in it holds a fingerprint of the credential, never the credential: the scope is
seen by code that may log it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from gateway.auth.credentials import fingerprint
from gateway.mcpfront.toolbox import Caller, CallerKind
from meshkit.identity import Identity, PrincipalKind
from meshkit.permissions import Policy

__all__ = ["ISSUER", "Authenticator", "authenticated_user", "caller_for", "caller_of"]

#: The ``iss`` of the principals the front hands the SDK: the gateway vouches for them.
ISSUER = "plugmesh"


class Authenticator(Protocol):
    """Authenticates a request that must carry a bearer credential
    (:class:`gateway.auth.HttpGuard`)."""

    async def identify(self, scope: Mapping[str, Any]) -> Identity:
        """The verified caller of the request in ``scope``.

        Raises:
            gateway.auth.AuthFailed: No credential, or one that does not verify.
            gateway.auth.AuthUnavailable: The credential cannot be checked now.
        """
        ...


def caller_for(identity: Identity) -> Caller:
    """The MCP caller ``identity`` is, as :func:`caller_of` reads it back from a request."""
    return Caller(
        id=identity.subject,
        kind=_kind(identity),
        admin=identity.admin,
        email=identity.email,
        permissions=identity.permissions or Policy(),
    )


def authenticated_user(identity: Identity, credential: str) -> AuthenticatedUser:
    """The SDK's principal for ``identity``, who presented the bearer ``credential``."""
    kind = _kind(identity)
    token = AccessToken(
        token=fingerprint(credential),
        client_id=identity.subject,
        scopes=[],
        subject=identity.subject,
        claims={
            "iss": ISSUER,
            "kind": kind.value,
            "admin": identity.admin,
            "email": identity.email,
            # In memory only: the gateway's own object, never written anywhere.
            "permissions": identity.permissions or Policy(),
        },
    )
    return AuthenticatedUser(token)


def caller_of(scope: Mapping[str, Any]) -> Caller:
    """The caller the front put in ``scope["user"]``.

    Raises:
        RuntimeError: The request did not come through the front's authentication.
    """
    user = scope.get("user")
    if not isinstance(user, AuthenticatedUser) or user.access_token.subject is None:
        raise RuntimeError("an MCP request reached a handler without a verified caller")
    claims = user.access_token.claims or {}
    permissions = claims.get("permissions")
    return Caller(
        id=user.access_token.subject,
        kind=CallerKind(claims.get("kind", CallerKind.MACHINE.value)),
        admin=bool(claims.get("admin", False)),
        email=str(claims.get("email", "")),
        permissions=permissions if isinstance(permissions, Policy) else Policy(),
    )


def _kind(identity: Identity) -> CallerKind:
    return CallerKind.PERSON if identity.kind is PrincipalKind.USER else CallerKind.MACHINE
