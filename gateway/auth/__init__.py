"""The gateway's authentication: who is calling, and may they call this RPC?

::

    auth = GatewayAuth(config.auth, config.mesh, catalog, upstreams)
    await auth.start()                    # the NATS link, in the background
    build_app(catalog, upstreams, settings, guard=auth.http)
    IngressServer(..., guard=auth.grpc)
    await auth.close()

Flow (:mod:`~gateway.auth.guard`): the caller presents ``Authorization: Bearer <token>``
(HTTP header or gRPC metadata). A machine token (``pmk_…``) is validated by the
machine-users service's ``ValidateToken`` through the upstreams and cached briefly
(:mod:`~gateway.auth.machine`, :mod:`~gateway.auth.cache`); a machine user's entries are
dropped at once on ``machine_user.deleted``, ``machine_user.token_rotated`` and
``machine_user.updated`` (:mod:`~gateway.auth.events`), so its next request is validated
again and carries its new role and permissions. A JWT of a person is verified here with
the configured HS256 secret or RS256 public key, or with the keys of an OpenID Connect
issuer, fetched and kept fresh in the background (:mod:`~gateway.auth.jwts`,
:mod:`~gateway.auth.jwks`); the person is an admin when their user record has ROLE_ADMIN
(:mod:`~gateway.auth.roles`). The RPC's declared ``(plugmesh.options.v1.access)``
decides (:mod:`~gateway.auth.access`): 401, 403, or the call goes upstream with the
caller's identity signed into its metadata (:mod:`meshkit.identity`). Every 401 is
published as ``auth.failed``, with a fingerprint of the credential, never the
credential. :mod:`~gateway.auth.for_http` and :mod:`~gateway.auth.for_grpc` adapt the
guard to each port; :mod:`~gateway.auth.errors` holds the refusals,
:mod:`~gateway.auth.settings` the configuration.
"""

from __future__ import annotations

from gateway.auth.cache import AnswerCache
from gateway.auth.errors import AuthError, AuthFailed, AuthUnavailable, Forbidden
from gateway.auth.events import AuthEvents
from gateway.auth.for_grpc import GrpcGuard
from gateway.auth.for_http import HttpGuard
from gateway.auth.guard import Guard, Request
from gateway.auth.jwks import IssuerKeys
from gateway.auth.jwts import JwtVerifier
from gateway.auth.machine import MachineTokens, UpstreamValidator
from gateway.auth.roles import PersonRecord, PersonRoles
from gateway.auth.settings import AuthSettings
from gateway.catalog import Catalog
from gateway.upstream import Upstreams
from meshkit.config import MeshConfig
from meshkit.identity import Identity, signing_key

__all__ = [
    "AuthError",
    "AuthFailed",
    "AuthSettings",
    "AuthUnavailable",
    "Forbidden",
    "GatewayAuth",
    "GrpcGuard",
    "Guard",
    "HttpGuard",
    "Request",
]


class GatewayAuth:
    """The gateway's authentication, wired; ``http`` and ``grpc`` guard the two ports.

    Args:
        settings: JWT keys, cache TTL, timeouts.
        mesh: The mesh settings (registration secret, NATS).
        catalog: Where the machine-users and users services are found.
        upstreams: How they are called.

    Raises:
        meshkit.config.ConfigError: The RS256 key cannot be used.
    """

    def __init__(
        self, settings: AuthSettings, mesh: MeshConfig, catalog: Catalog, upstreams: Upstreams
    ) -> None:
        key = signing_key(mesh.registration_secret)
        ttl, size = settings.cache_ttl_seconds, settings.cache_max_entries
        self.tokens: AnswerCache[Identity] = AnswerCache(ttl_seconds=ttl, max_entries=size)
        self.roles: AnswerCache[PersonRecord] = AnswerCache(ttl_seconds=ttl, max_entries=size)
        self.events = AuthEvents(
            mesh.nats_url,
            on_machine_user=self.tokens.drop_owner,
            on_user=self.roles.drop_owner,
            on_live=self._live,
            failed_events_per_second=settings.failed_events_per_second,
            max_sessions=size,
            nats_tls=mesh.nats_tls,
        )
        timeout = settings.timeout_seconds
        #: The OpenID issuer's keys, when one is configured.
        self.issuer_keys = (
            IssuerKeys(
                settings.oidc_issuer,
                algorithms=settings.oidc_algorithms,
                refresh_seconds=settings.oidc_refresh_seconds,
                min_refresh_seconds=settings.oidc_min_refresh_seconds,
                timeout_seconds=timeout,
            )
            if settings.oidc_issuer
            else None
        )
        self.guard = Guard(
            machine=MachineTokens(
                UpstreamValidator(catalog, upstreams, timeout_seconds=timeout), self.tokens
            ),
            jwts=JwtVerifier(settings, self.issuer_keys),
            roles=PersonRoles(
                catalog, upstreams, signing_key=key, cache=self.roles, timeout_seconds=timeout
            ),
            signing_key=key,
            mesh_secret=mesh.registration_secret,
            events=self.events,
        )
        self.http = HttpGuard(self.guard)
        self.grpc = GrpcGuard(self.guard)

    async def start(self) -> None:
        """Connect to NATS and fetch the OpenID issuer's keys, both in the background.
        Safe to call twice."""
        await self.events.start()
        if self.issuer_keys is not None:
            await self.issuer_keys.start()

    async def close(self) -> None:
        """Close the NATS link, stop refreshing the issuer's keys. Safe to call twice."""
        if self.issuer_keys is not None:
            await self.issuer_keys.close()
        await self.events.close()

    def _live(self, live: bool) -> None:
        # Whatever happened while deaf is unknown: start empty, cache only while listening.
        for cache in (self.tokens, self.roles):
            cache.clear()
            cache.enabled = live
