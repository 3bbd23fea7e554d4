"""The guard on the HTTP side: ASGI scope in, identity metadata out, or an HTTP error.

:class:`HttpGuard` is what :func:`gateway.http.build_app` takes as ``guard``. Refusals
are ``google.rpc.Status`` bodies with one ``ErrorInfo`` (domain ``gateway.plugmesh``):
401 with a ``WWW-Authenticate: Bearer`` header, 403, or 503 when a machine token cannot
be checked now. :meth:`HttpGuard.identify` is the same check for the MCP endpoint, which
calls no RPC and answers refusals in its own form (with :func:`bearer_challenge`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor
from google.rpc import code_pb2

from gateway.auth.errors import AuthError, AuthFailed, AuthUnavailable, Forbidden
from gateway.auth.guard import Guard, Metadata, Request
from gateway.http.errors import HttpError
from meshkit.identity import Identity
from plugmesh.events.v1 import auth_events_pb2

__all__ = [
    "HttpForbidden",
    "HttpGuard",
    "HttpUnauthorized",
    "HttpUnavailable",
    "bearer_challenge",
]


class HttpUnauthorized(HttpError):
    """401 UNAUTHENTICATED."""

    status = 401
    code = code_pb2.UNAUTHENTICATED


class HttpForbidden(HttpError):
    """403 PERMISSION_DENIED."""

    status = 403
    code = code_pb2.PERMISSION_DENIED


class HttpUnavailable(HttpError):
    """503 UNAVAILABLE."""

    status = 503
    code = code_pb2.UNAVAILABLE


class HttpGuard:
    """Checks HTTP requests with ``guard``."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    async def __call__(
        self, rpc: descriptor.MethodDescriptor, scope: Mapping[str, Any]
    ) -> Metadata:
        """The identity metadata for the upstream call of ``rpc``.

        Raises:
            HttpError: 401, 403 or 503.
        """
        request = _request(scope, rpc)
        try:
            return await self._guard.check(request)
        except AuthError as exc:
            raise _http_error(exc, presented=request.authorization is not None) from None

    async def identify(self, scope: Mapping[str, Any]) -> Identity:
        """The caller of a request that must carry a bearer credential and calls no RPC.

        Raises:
            AuthFailed: No credential, or one that does not verify (published as
                ``auth.failed``).
            AuthUnavailable: The credential cannot be checked now.
        """
        return await self._guard.authenticate(_request(scope, None))


def bearer_challenge(
    failure: AuthFailed, *, presented: bool, resource_metadata: str | None = None
) -> str:
    """The ``WWW-Authenticate`` value of a 401 (RFC 6750 §3): ``invalid_token`` when a
    credential was presented and refused; ``resource_metadata`` (RFC 9728 §5.1) when the
    resource has metadata."""
    if resource_metadata is not None:
        challenge = f'Bearer resource_metadata="{resource_metadata}"'
    else:
        challenge = 'Bearer realm="plugmesh"'
    missing = failure.failure == auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS
    if presented and not missing:
        challenge += ', error="invalid_token"'
    return challenge


def _request(scope: Mapping[str, Any], rpc: descriptor.MethodDescriptor | None) -> Request:
    headers = _headers(scope)
    client = scope.get("client")
    return Request(
        rpc=rpc,
        authorization=headers.get("authorization"),
        http_method=str(scope.get("method", "")),
        http_path=str(scope.get("path", "")),
        ip_address=str(client[0]) if client else "",
        user_agent=headers.get("user-agent", ""),
        request_id=headers.get("x-request-id", ""),
    )


def _headers(scope: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        key = bytes(name).decode("latin-1").lower()
        if key in ("authorization", "user-agent", "x-request-id") and key not in found:
            found[key] = bytes(value).decode("latin-1")
    return found


def _http_error(exc: AuthError, *, presented: bool) -> HttpError:
    if isinstance(exc, AuthFailed):
        return HttpUnauthorized(
            exc.message,
            reason=exc.reason,
            headers={"WWW-Authenticate": bearer_challenge(exc, presented=presented)},
        )
    if isinstance(exc, Forbidden):
        return HttpForbidden(exc.message, reason=exc.reason)
    if isinstance(exc, AuthUnavailable):
        return HttpUnavailable(exc.message, reason=exc.reason)
    return HttpError(exc.message, reason=exc.reason)
