"""Who is calling the console's endpoints: the bearer credential of the request, checked
by the gateway's own guard (:meth:`gateway.auth.HttpGuard.identify`), with the same cache
and the same ``auth.failed`` and ``auth.login`` events as every other request.

The console's endpoints call no RPC, so their access is declared here: every feed needs a
signed-in caller, and the admin ones an admin (the page leaves them out for others; this
is what refuses them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from gateway.auth.errors import AuthFailed, AuthUnavailable
from gateway.auth.for_http import (
    HttpForbidden,
    HttpUnauthorized,
    HttpUnavailable,
    bearer_challenge,
)
from meshkit.identity import Identity

__all__ = ["CallerCheck", "caller_of", "identity_view"]


class CallerCheck(Protocol):
    """Identifies the caller of a request that calls no RPC (:class:`gateway.auth.HttpGuard`)."""

    async def identify(self, scope: Mapping[str, Any]) -> Identity:
        """The verified caller.

        Raises:
            AuthFailed: No credential, or one that does not verify.
            AuthUnavailable: The credential cannot be checked now.
        """
        ...


async def caller_of(
    callers: CallerCheck, scope: Mapping[str, Any], *, admin: bool = False
) -> Identity:
    """The verified caller of ``scope``; an admin when ``admin``.

    Raises:
        HttpError: 401, 403 or 503.
    """
    presented = any(bytes(name).lower() == b"authorization" for name, _ in scope["headers"])
    try:
        identity = await callers.identify(scope)
    except AuthFailed as exc:
        challenge = bearer_challenge(exc, presented=presented)
        raise HttpUnauthorized(
            exc.message, reason=exc.reason, headers={"WWW-Authenticate": challenge}
        ) from None
    except AuthUnavailable as exc:
        raise HttpUnavailable(exc.message, reason=exc.reason) from None
    if admin and not identity.admin:
        raise HttpForbidden(f"{scope['path']} is for admins only", reason="ADMIN_REQUIRED")
    return identity


def identity_view(identity: Identity) -> dict[str, Any]:
    """What the page shows of the signed-in caller (never the credential)."""
    return {
        "kind": identity.kind.name,
        "subject": identity.subject,
        "email": identity.email,
        "admin": identity.admin,
    }
