"""The gateway's decision for one call: who is calling, and may they call this RPC?

::

    guard = Guard(machine=..., jwts=..., roles=..., signing_key=..., mesh_secret=...,
                  events=...)
    metadata = await guard.check(Request(rpc=descriptor, authorization="Bearer …"))
    identity = await guard.authenticate(Request(authorization="Bearer …"))  # no RPC: /mcp

1. A mesh service proves itself with the registration secret
   (``plugmesh-registration-secret``, gRPC only); it may call anything, INTERNAL
   methods included.
2. Otherwise ``Authorization: Bearer <credential>``: a machine token (``pmk_…``, checked
   by the machine-users service, cached) or a JWT (checked here); a person is an admin
   when their user record says ROLE_ADMIN. The identity carries the caller's permissions
   on MCP tools (the machine user's own, the person's record's). No header: anonymous.
3. The RPC's declared access decides (:mod:`gateway.auth.access`): 401, 403 or through.
4. Through: the caller's identity, signed with the key derived from the registration
   secret, is the metadata to add to the upstream call (none for anonymous callers, or
   when the gateway has no secret to sign with).

Every 401 is published as ``auth.failed`` with a fingerprint of the credential, never
the credential; the first request of a person's session as ``auth.login``
(:mod:`~gateway.auth.logins`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hmac
import logging
from dataclasses import dataclass
from typing import Protocol

from google.protobuf import descriptor

from gateway.auth.access import authorize
from gateway.auth.credentials import CredentialKind, fingerprint, parse_header
from gateway.auth.errors import AuthFailed
from gateway.auth.jwts import JwtVerifier
from gateway.auth.logins import Login
from gateway.auth.machine import MachineTokens
from gateway.auth.roles import NOBODY, PersonRoles
from meshkit.identity import Identity, PrincipalKind, to_metadata
from plugmesh.events.v1 import auth_events_pb2, event_pb2

__all__ = ["MESH_IDENTITY", "AuthEventSink", "Guard", "Metadata", "Request", "verified_caller"]

log = logging.getLogger(__name__)

# The caller a guard verified for the request being served (its task's context).
_CALLER: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "gateway_verified_caller", default=None
)


def verified_caller() -> Identity | None:
    """The caller a guard verified while serving this request; None when none was (an
    anonymous call of a PUBLIC RPC, a refused one, or no check yet), e.g. for its access
    log line."""
    return _CALLER.get()


Metadata = tuple[tuple[str, str | bytes], ...]

#: A mesh service that proved itself with the registration secret.
MESH_IDENTITY = Identity(PrincipalKind.SERVICE, "mesh", admin=True)


class AuthEventSink(Protocol):
    """Where ``auth.failed`` and ``auth.login`` go (:class:`gateway.auth.events.AuthEvents`)."""

    async def failed(self, payload: auth_events_pb2.AuthFailed) -> None:
        """Publish ``payload``, best effort."""
        ...

    def logged_in(self, login: Login, *, ip_address: str, user_agent: str) -> None:
        """Announce ``login`` unless it was already; returns at once."""
        ...


@dataclass(frozen=True)
class Request:
    """What the guard needs to know about a call.

    Attributes:
        rpc: The RPC called; None for a request that calls none (the MCP endpoint).
        authorization: The ``Authorization`` header or metadata value, if any.
        service_secret: The ``plugmesh-registration-secret`` metadata, if any.
        http_method: The HTTP method; empty for gRPC.
        http_path: The HTTP path without the query; empty for gRPC.
        ip_address: Where the call came from.
        user_agent: The client's user agent.
        request_id: The ``x-request-id``.
    """

    rpc: descriptor.MethodDescriptor | None = None
    authorization: str | None = None
    service_secret: str | None = None
    http_method: str = ""
    http_path: str = ""
    ip_address: str = ""
    user_agent: str = ""
    request_id: str = ""

    def __repr__(self) -> str:
        return f"Request(rpc={_rpc_name(self)!r}, {self.http_method} {self.http_path})"


class Guard:
    """Authenticates and authorizes calls.

    Args:
        machine: Machine-token authentication.
        jwts: JWT verification.
        roles: Role lookup for people; None makes no person an admin.
        signing_key: Signs identities for the plugins; None forwards none.
        mesh_secret: The registration secret mesh services prove themselves with.
        events: Where ``auth.failed`` and ``auth.login`` go; None drops them.
    """

    def __init__(
        self,
        *,
        machine: MachineTokens,
        jwts: JwtVerifier,
        roles: PersonRoles | None,
        signing_key: bytes | None,
        mesh_secret: str | None,
        events: AuthEventSink | None,
    ) -> None:
        self._machine = machine
        self._jwts = jwts
        self._roles = roles
        self._key = signing_key
        self._secret = mesh_secret
        self._events = events

    async def check(self, request: Request) -> Metadata:
        """The identity metadata to add upstream of ``request.rpc``.

        Raises:
            AuthFailed: 401 (published as ``auth.failed``).
            Forbidden: 403.
            AuthUnavailable: 503, the credential cannot be checked now.
            ValueError: The request names no RPC.
        """
        if request.rpc is None:
            raise ValueError("Guard.check needs the RPC called; Guard.authenticate has none")
        try:
            identity = await self._identify(request)
            _CALLER.set(identity)
            authorize(request.rpc, identity)
        except AuthFailed as exc:
            await self._report(request, exc)
            raise
        if identity is None or self._key is None:
            return ()
        return to_metadata(identity, self._key)

    async def authenticate(self, request: Request) -> Identity:
        """The caller of a request that must carry a bearer credential and calls no RPC
        (the MCP endpoint): as :meth:`check` identifies callers, with the same cache and
        the same ``auth.failed`` and ``auth.login`` events.

        Raises:
            AuthFailed: No credential (MISSING_CREDENTIALS), or one that does not verify;
                published as ``auth.failed``.
            AuthUnavailable: The credential cannot be checked now.
        """
        try:
            identity = await self._identify(request)
            if identity is None:
                raise AuthFailed(
                    "a bearer token is needed (Authorization: Bearer <token>)",
                    failure=auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS,
                )
        except AuthFailed as exc:
            await self._report(request, exc)
            raise
        _CALLER.set(identity)
        return identity

    async def _identify(self, request: Request) -> Identity | None:
        if self._is_mesh_service(request.service_secret):
            return MESH_IDENTITY
        credential = parse_header(request.authorization)
        if credential is None:
            return None
        if credential.kind is CredentialKind.MACHINE_TOKEN:
            return await self._machine.authenticate(credential.secret)
        person, login = await self._jwts.verify_session(credential.secret)
        if self._events is not None:
            self._events.logged_in(
                login, ip_address=request.ip_address, user_agent=request.user_agent
            )
        record = NOBODY if self._roles is None else await self._roles.record(person.subject)
        return dataclasses.replace(
            person, admin=person.admin or record.admin, permissions=record.permissions
        )

    def _is_mesh_service(self, presented: str | None) -> bool:
        if not presented or not self._secret:
            return False
        return hmac.compare_digest(presented.encode(), self._secret.encode())

    async def _report(self, request: Request, failure: AuthFailed) -> None:
        credential = _credential_text(request.authorization)
        payload = auth_events_pb2.AuthFailed(
            actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_ANONYMOUS),
            reason=failure.failure,
            credential_type=failure.credential_type,
            credential_fingerprint=fingerprint(credential) if credential else "",
            rpc=_rpc_name(request),
            http_method=request.http_method,
            http_path=request.http_path,
            ip_address=request.ip_address,
            user_agent=request.user_agent,
            request_id=request.request_id,
        )
        log.info(
            "authentication failed",
            extra={
                "rpc": _rpc_name(request),
                "reason": failure.reason,
                "credential_fingerprint": payload.credential_fingerprint,
                "ip_address": request.ip_address,
            },
        )
        if self._events is not None:
            await self._events.failed(payload)


def _rpc_name(request: Request) -> str:
    return request.rpc.full_name if request.rpc is not None else ""


def _credential_text(authorization: str | None) -> str:
    """The credential part of a header value (the whole value when it has no scheme)."""
    if not authorization or not authorization.strip():
        return ""
    scheme, _, rest = authorization.strip().partition(" ")
    return rest.strip() if scheme.lower() == "bearer" and rest.strip() else authorization.strip()
