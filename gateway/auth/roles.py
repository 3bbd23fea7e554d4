"""What a person may do: their role on the plugmesh API and their permissions on MCP tools.

A JWT says who a person is; what they may do on the API is their user record's role
(``ROLE_ADMIN``), and what they may call through the MCP endpoint its permissions, both
kept by the users plugin (one lookup for both). The gateway asks ``UserService/GetUser`` as
the mesh service ``gateway`` (a signed service identity), caches the answer briefly,
and drops it at once on ``user.*`` events about that user. A person without a record is
not an admin and may call no tool; when the users service cannot be asked, the same
holds for that request (admin RPCs answer 403, the tool list is empty), a warning is
logged and nothing is cached.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import grpc

from gateway.auth.cache import AnswerCache, digest
from gateway.auth.policies import NO_PERMISSIONS, policy_of
from gateway.catalog import Catalog
from gateway.upstream import Upstreams
from meshkit.identity import Identity, PrincipalKind, to_metadata
from meshkit.permissions import Policy
from plugmesh.users.v1 import users_pb2

__all__ = ["GATEWAY_IDENTITY", "GET_USER", "NOBODY", "PersonRecord", "PersonRoles"]

log = logging.getLogger(__name__)

GET_USER = "plugmesh.users.v1.UserService.GetUser"
#: Who the gateway is when it asks other services for itself.
GATEWAY_IDENTITY = Identity(PrincipalKind.SERVICE, "gateway")


@dataclass(frozen=True)
class PersonRecord:
    """What the gateway keeps of a person's user record.

    Attributes:
        admin: Whether their role is ROLE_ADMIN.
        permissions: Their permissions on MCP servers and tools.
    """

    admin: bool
    permissions: Policy


#: A person without a record (or whose record cannot be read now).
NOBODY = PersonRecord(admin=False, permissions=NO_PERMISSIONS)


class PersonRoles:
    """Looks up people's role and permissions.

    Args:
        catalog: Where the users service is found.
        upstreams: How it is called.
        signing_key: Signs the gateway's own identity; None: nobody has a record.
        cache: Answers by user-id digest, owned by the user id.
        timeout_seconds: Deadline of a lookup.
    """

    def __init__(
        self,
        catalog: Catalog,
        upstreams: Upstreams,
        *,
        signing_key: bytes | None,
        cache: AnswerCache[PersonRecord],
        timeout_seconds: float,
    ) -> None:
        self._catalog = catalog
        self._upstreams = upstreams
        self._key = signing_key
        self._cache = cache
        self._timeout = timeout_seconds

    @property
    def cache(self) -> AnswerCache[PersonRecord]:
        """The cache of answers."""
        return self._cache

    async def is_admin(self, user_id: str) -> bool:
        """Whether the person ``user_id`` has ROLE_ADMIN."""
        return (await self.record(user_id)).admin

    async def record(self, user_id: str) -> PersonRecord:
        """The role and permissions of the person ``user_id``."""
        key = digest(user_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        method = self._catalog.method(GET_USER)
        if method is None or self._key is None:
            return NOBODY
        epoch = self._cache.epoch
        request = users_pb2.GetUserRequest(user_id=user_id)
        try:
            reply = await self._upstreams.unary(
                method,
                request.SerializeToString(),
                timeout_seconds=self._timeout,
                metadata=to_metadata(GATEWAY_IDENTITY, self._key),
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                log.warning(
                    "cannot look up a person's record; treating them as no admin, allowed no tool",
                    extra={"user_id": user_id, "code": exc.code().name},
                )
                return NOBODY
            record = NOBODY
        else:
            user = users_pb2.GetUserResponse.FromString(reply.body).user
            record = PersonRecord(
                admin=user.role == users_pb2.ROLE_ADMIN,
                permissions=policy_of(user.permissions, field="user.permissions", owner=user_id),
            )
        self._cache.put(key, record, owner=user_id, epoch=epoch)
        return record
