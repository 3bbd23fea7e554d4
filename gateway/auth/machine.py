"""Machine tokens, validated by the machine-users service and cached briefly.

The gateway asks ``MachineUserService/ValidateToken`` through its own upstreams (the
method is looked up in the catalog, so the machine-users service is found like any
other). A valid answer is cached under the token's SHA-256 for the cache's TTL, or
less when the answer says the token stops working sooner, and dropped at once when the
machine user is deleted or its token rotated (:mod:`gateway.auth.events`). Invalid
answers are not cached. The identity carries the machine user's permissions on MCP
servers and tools, from the same answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Protocol

import grpc

from gateway.auth.cache import AnswerCache, digest
from gateway.auth.errors import AuthFailed, AuthUnavailable
from gateway.auth.policies import policy_of
from gateway.catalog import Catalog
from gateway.upstream import Upstreams
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2 as events
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2

__all__ = ["VALIDATE_TOKEN", "MachineTokens", "TokenValidator", "UpstreamValidator"]

VALIDATE_TOKEN = "plugmesh.machineusers.v1.MachineUserService.ValidateToken"

_FAILURES: Mapping[int, tuple[events.AuthFailureReason.ValueType, str]] = {
    machineusers_pb2.INVALID_REASON_MALFORMED: (
        events.AUTH_FAILURE_REASON_MALFORMED,
        "the machine token is malformed (a typo?)",
    ),
    machineusers_pb2.INVALID_REASON_EXPIRED: (
        events.AUTH_FAILURE_REASON_EXPIRED,
        "the machine token has expired",
    ),
}
_UNKNOWN = (
    events.AUTH_FAILURE_REASON_UNKNOWN_TOKEN,
    "the machine token is not known (never issued, rotated out or deleted)",
)


class TokenValidator(Protocol):
    """Asks whether a machine token is valid (the machine-users service's ValidateToken)."""

    async def validate(self, token: str) -> machineusers_pb2.ValidateTokenResponse:
        """The service's answer.

        Raises:
            AuthUnavailable: The service cannot be reached.
        """
        ...


class UpstreamValidator:
    """:class:`TokenValidator` through the gateway's upstreams."""

    def __init__(self, catalog: Catalog, upstreams: Upstreams, *, timeout_seconds: float):
        self._catalog = catalog
        self._upstreams = upstreams
        self._timeout = timeout_seconds

    async def validate(self, token: str) -> machineusers_pb2.ValidateTokenResponse:
        """Call ValidateToken on a machine-users instance."""
        method = self._catalog.method(VALIDATE_TOKEN)
        if method is None:
            raise AuthUnavailable(
                "machine tokens cannot be checked: no machine-users service is registered",
                reason="MACHINE_USERS_UNAVAILABLE",
            )
        request = machineusers_pb2.ValidateTokenRequest(token=token)
        try:
            reply = await self._upstreams.unary(
                method, request.SerializeToString(), timeout_seconds=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise AuthUnavailable(
                f"machine tokens cannot be checked now: {exc.code().name}",
                reason="MACHINE_USERS_UNAVAILABLE",
            ) from None
        return machineusers_pb2.ValidateTokenResponse.FromString(reply.body)


class MachineTokens:
    """Authenticates machine tokens.

    Args:
        validator: Where tokens are validated.
        cache: Valid answers, by token digest, owned by the machine user id.
        clock: Wall-clock now, in UTC (for answers that say when they stop being true).
    """

    def __init__(
        self,
        validator: TokenValidator,
        cache: AnswerCache[Identity],
        *,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._validator = validator
        self._cache = cache
        self._clock = clock

    @property
    def cache(self) -> AnswerCache[Identity]:
        """The cache of valid answers."""
        return self._cache

    async def authenticate(self, token: str) -> Identity:
        """The machine user ``token`` belongs to.

        Raises:
            AuthFailed: The token is malformed, unknown or expired.
            AuthUnavailable: It cannot be checked now.
        """
        key = digest(token)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        epoch = self._cache.epoch
        answer = await self._validator.validate(token)
        if not answer.valid:
            failure, message = _FAILURES.get(answer.invalid_reason, _UNKNOWN)
            raise AuthFailed(
                message, failure=failure, credential_type=events.CREDENTIAL_TYPE_MACHINE_TOKEN
            )
        user = answer.machine_user
        identity = Identity(
            PrincipalKind.MACHINE,
            user.machine_user_id,
            admin=user.role == users_pb2.ROLE_ADMIN,
            permissions=policy_of(
                user.permissions,
                field="machine_user.permissions",
                owner=user.machine_user_id,
            ),
        )
        max_seconds = None
        if answer.HasField("expire_time"):
            remaining = answer.expire_time.ToDatetime(tzinfo=dt.UTC) - self._clock()
            max_seconds = remaining.total_seconds()
        self._cache.put(
            key, identity, owner=user.machine_user_id, epoch=epoch, max_seconds=max_seconds
        )
        return identity
