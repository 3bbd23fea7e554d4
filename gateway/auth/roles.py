"""Whether a person is an admin of the plugmesh API: their role in the users plugin.

A JWT says who a person is; what they may do on the API is their user record's role
(``ROLE_ADMIN``), kept by the users plugin. The gateway asks ``UserService/GetUser`` as
the mesh service ``gateway`` (a signed service identity), caches the answer briefly,
and drops it at once on ``user.*`` events about that user. A person without a record is
not an admin; when the users service cannot be asked, the person is treated as not an
admin (admin RPCs answer 403) and a warning is logged.
"""

from __future__ import annotations

import logging

import grpc

from gateway.auth.cache import AnswerCache, digest
from gateway.catalog import Catalog
from gateway.upstream import Upstreams
from meshkit.identity import Identity, PrincipalKind, to_metadata
from plugmesh.users.v1 import users_pb2

__all__ = ["GATEWAY_IDENTITY", "GET_USER", "PersonRoles"]

log = logging.getLogger(__name__)

GET_USER = "plugmesh.users.v1.UserService.GetUser"
#: Who the gateway is when it asks other services for itself.
GATEWAY_IDENTITY = Identity(PrincipalKind.SERVICE, "gateway")


class PersonRoles:
    """Looks up whether people are admins.

    Args:
        catalog: Where the users service is found.
        upstreams: How it is called.
        signing_key: Signs the gateway's own identity; None: nobody is an admin by role.
        cache: Answers by user-id digest, owned by the user id.
        timeout_seconds: Deadline of a lookup.
    """

    def __init__(
        self,
        catalog: Catalog,
        upstreams: Upstreams,
        *,
        signing_key: bytes | None,
        cache: AnswerCache[bool],
        timeout_seconds: float,
    ) -> None:
        self._catalog = catalog
        self._upstreams = upstreams
        self._key = signing_key
        self._cache = cache
        self._timeout = timeout_seconds

    @property
    def cache(self) -> AnswerCache[bool]:
        """The cache of answers."""
        return self._cache

    async def is_admin(self, user_id: str) -> bool:
        """Whether the person ``user_id`` has ROLE_ADMIN."""
        key = digest(user_id)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        method = self._catalog.method(GET_USER)
        if method is None or self._key is None:
            return False
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
                    "cannot look up a person's role; treating them as no admin",
                    extra={"user_id": user_id, "code": exc.code().name},
                )
                return False
            admin = False
        else:
            admin = users_pb2.GetUserResponse.FromString(reply.body).user.role == (
                users_pb2.ROLE_ADMIN
            )
        self._cache.put(key, admin, owner=user_id, epoch=epoch)
        return admin
