"""Settings of the gateway's authentication, read once at the entry point.

Every variable is listed, with its default and meaning, in :data:`VARIABLES` (and so in
the README's one table). JWTs for people are verified with an HS256 secret, an RS256
public key, or both (each token's ``alg`` header picks the key; no other algorithm is
accepted), and with the keys an OpenID Connect issuer publishes (a token's ``kid`` picks
the key, the key its algorithm: :mod:`gateway.auth.jwks`); with none of them, the gateway
accepts machine tokens only.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshkit.config import ConfigError, env_number

__all__ = ["VARIABLES", "AuthSettings"]

HS256_SECRET = "PLUGMESH_GATEWAY_JWT_HS256_SECRET"
RS256_PUBLIC_KEY = "PLUGMESH_GATEWAY_JWT_RS256_PUBLIC_KEY"
ISSUER = "PLUGMESH_GATEWAY_JWT_ISSUER"
AUDIENCE = "PLUGMESH_GATEWAY_JWT_AUDIENCE"
LEEWAY_SECONDS = "PLUGMESH_GATEWAY_JWT_LEEWAY_SECONDS"
CACHE_TTL_SECONDS = "PLUGMESH_GATEWAY_AUTH_CACHE_TTL_SECONDS"
TIMEOUT_SECONDS = "PLUGMESH_GATEWAY_AUTH_TIMEOUT_SECONDS"
FAILED_EVENTS_PER_SECOND = "PLUGMESH_GATEWAY_AUTH_FAILED_EVENTS_PER_SECOND"
OIDC_ISSUER = "PLUGMESH_GATEWAY_OIDC_ISSUER"
OIDC_ALGORITHMS = "PLUGMESH_GATEWAY_OIDC_ALGORITHMS"
OIDC_REFRESH_SECONDS = "PLUGMESH_GATEWAY_OIDC_REFRESH_SECONDS"
OIDC_MIN_REFRESH_SECONDS = "PLUGMESH_GATEWAY_OIDC_MIN_REFRESH_SECONDS"

#: The signature algorithms an issuer's keys may be used with: asymmetric only, so that
#: no public key can ever serve as an HMAC secret.
OIDC_SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
_OIDC_DEFAULT_ALGORITHMS = ("RS256", "ES256", "EdDSA")

#: Every variable: (name, default as shown, meaning), for the README table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        HS256_SECRET,
        "(none)",
        "secret that verifies HS256 JWTs of people (claims `sub`, `email`); with no JWT key"
        " the gateway accepts machine tokens only",
    ),
    (
        RS256_PUBLIC_KEY,
        "(none)",
        "PEM public key, or the path of a PEM file, that verifies RS256 JWTs of people",
    ),
    (
        ISSUER,
        "(any)",
        "the `iss` a JWT must carry, when set; the MCP endpoint's protected resource metadata"
        " names it as authorization server",
    ),
    (
        AUDIENCE,
        "(any)",
        "the `aud` a JWT must carry, when set; required with an OpenID Connect issuer",
    ),
    (LEEWAY_SECONDS, "30", "clock skew allowed when checking a JWT's `exp` and `nbf`"),
    (
        CACHE_TTL_SECONDS,
        "10",
        "how long the gateway trusts a machine token it validated; dropped at once on"
        " `machine_user.deleted` and `machine_user.token_rotated` (0: never cached)",
    ),
    (
        TIMEOUT_SECONDS,
        "5",
        "deadline of the gateway's calls that validate a machine token or look up a role",
    ),
    (
        FAILED_EVENTS_PER_SECOND,
        "20",
        "most `auth.failed` events the gateway publishes a second (bursts of ten times"
        " that); refusals beyond it are still refused, counted and logged, not published",
    ),
    (
        OIDC_ISSUER,
        "(none)",
        "OpenID Connect issuer (`https://idp.example/realms/x`) whose JWTs of people the"
        " gateway accepts: its discovery document and JWKS are fetched, cached and"
        " refreshed; a token's `kid` picks the key, its `iss` must be this issuer and its"
        " `aud` the one configured",
    ),
    (
        OIDC_ALGORITHMS,
        ",".join(_OIDC_DEFAULT_ALGORITHMS),
        "signature algorithms accepted with the issuer's keys (comma-separated; RS*, PS*,"
        " ES*, EdDSA); a key is used only with the algorithm its type and `alg` allow",
    ),
    (
        OIDC_REFRESH_SECONDS,
        "3600",
        "how often the issuer's discovery document and JWKS are fetched again",
    ),
    (
        OIDC_MIN_REFRESH_SECONDS,
        "30",
        "least time between two fetches: a token naming an unknown `kid` triggers one at"
        " most this often, then is refused",
    ),
)


@dataclass(frozen=True, repr=False)
class AuthSettings:
    """How the gateway authenticates callers.

    Attributes:
        jwt_hs256_secret: Verifies HS256 JWTs; None accepts none.
        jwt_rs256_public_key: PEM public key that verifies RS256 JWTs; None accepts none.
        jwt_issuer: Required ``iss``, when set.
        jwt_audience: Required ``aud``, when set.
        jwt_leeway_seconds: Clock skew allowed on ``exp`` and ``nbf``.
        cache_ttl_seconds: How long a validated machine token is trusted; 0 disables the
            cache.
        cache_max_entries: How many validated tokens (and roles) are kept at most.
        timeout_seconds: Deadline of a ValidateToken or role lookup call.
        failed_events_per_second: Rate limit of ``auth.failed`` events.
        oidc_issuer: The OpenID Connect issuer whose keys verify JWTs; None uses none.
        oidc_algorithms: The algorithms the issuer's keys may be used with.
        oidc_refresh_seconds: How often the issuer's keys are fetched again.
        oidc_min_refresh_seconds: Least time between two fetches of the issuer's keys.
    """

    jwt_hs256_secret: str | None = None
    jwt_rs256_public_key: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_leeway_seconds: float = 30.0
    cache_ttl_seconds: float = 10.0
    cache_max_entries: int = 10_000
    timeout_seconds: float = 5.0
    failed_events_per_second: float = 20.0
    oidc_issuer: str | None = None
    oidc_algorithms: tuple[str, ...] = _OIDC_DEFAULT_ALGORITHMS
    oidc_refresh_seconds: float = 3600.0
    oidc_min_refresh_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name, value in (
            (LEEWAY_SECONDS, self.jwt_leeway_seconds),
            (CACHE_TTL_SECONDS, self.cache_ttl_seconds),
        ):
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be 0 or more seconds, got {value}")
        if not math.isfinite(self.timeout_seconds) or self.timeout_seconds <= 0:
            raise ConfigError(f"{TIMEOUT_SECONDS} must be positive, got {self.timeout_seconds}")
        rate = self.failed_events_per_second
        if not math.isfinite(rate) or rate <= 0:
            raise ConfigError(f"{FAILED_EVENTS_PER_SECOND} must be positive, got {rate}")
        self._check_oidc()

    def _check_oidc(self) -> None:
        for name, value in (
            (OIDC_REFRESH_SECONDS, self.oidc_refresh_seconds),
            (OIDC_MIN_REFRESH_SECONDS, self.oidc_min_refresh_seconds),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        unknown = sorted(set(self.oidc_algorithms) - OIDC_SUPPORTED_ALGORITHMS)
        if unknown or not self.oidc_algorithms:
            supported = ", ".join(sorted(OIDC_SUPPORTED_ALGORITHMS))
            raise ConfigError(
                f"{OIDC_ALGORITHMS} may hold only {supported}, got {', '.join(unknown) or 'none'}"
            )
        if self.oidc_issuer is None:
            return
        if not self.oidc_issuer.startswith(("https://", "http://")):
            raise ConfigError(f"{OIDC_ISSUER} must be an https:// URL, got {self.oidc_issuer!r}")
        if self.jwt_audience is None:
            # Without it, a token the issuer minted for any other application would do.
            raise ConfigError(f"{OIDC_ISSUER} needs {AUDIENCE}: the audience of plugmesh")

    def __repr__(self) -> str:
        # The secret never reaches a log line or a traceback.
        return (
            f"AuthSettings(hs256={'set' if self.jwt_hs256_secret else 'unset'}, "
            f"rs256={'set' if self.jwt_rs256_public_key else 'unset'}, "
            f"issuer={self.jwt_issuer!r}, audience={self.jwt_audience!r}, "
            f"oidc_issuer={self.oidc_issuer!r}, cache_ttl_seconds={self.cache_ttl_seconds})"
        )

    @property
    def accepts_jwts(self) -> bool:
        """Whether any JWT key is configured."""
        return bool(self.jwt_hs256_secret or self.jwt_rs256_public_key or self.oidc_issuer)

    @property
    def authorization_server(self) -> str | None:
        """The issuer people get their tokens from, for the MCP endpoint's protected
        resource metadata: the OpenID Connect issuer, else the required ``iss``."""
        return self.oidc_issuer or self.jwt_issuer

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuthSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        values = os.environ if env is None else env
        return cls(
            jwt_hs256_secret=values.get(HS256_SECRET) or None,
            jwt_rs256_public_key=_pem(values.get(RS256_PUBLIC_KEY, "").strip()),
            jwt_issuer=values.get(ISSUER) or None,
            jwt_audience=values.get(AUDIENCE) or None,
            jwt_leeway_seconds=env_number(values, LEEWAY_SECONDS, 30.0, unit="a number of seconds"),
            cache_ttl_seconds=env_number(
                values, CACHE_TTL_SECONDS, 10.0, unit="a number of seconds"
            ),
            timeout_seconds=env_number(values, TIMEOUT_SECONDS, 5.0, unit="a number of seconds"),
            failed_events_per_second=env_number(
                values, FAILED_EVENTS_PER_SECOND, 20.0, unit="a number of events a second"
            ),
            oidc_issuer=values.get(OIDC_ISSUER, "").strip() or None,
            oidc_algorithms=_names(values.get(OIDC_ALGORITHMS, "")) or _OIDC_DEFAULT_ALGORITHMS,
            oidc_refresh_seconds=env_number(
                values, OIDC_REFRESH_SECONDS, 3600.0, unit="a number of seconds"
            ),
            oidc_min_refresh_seconds=env_number(
                values, OIDC_MIN_REFRESH_SECONDS, 30.0, unit="a number of seconds"
            ),
        )


def _names(value: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in value.split(",") if name.strip())


def _pem(value: str) -> str | None:
    if not value:
        return None
    if value.startswith("-----BEGIN"):
        return value
    try:
        return Path(value).read_text()
    except OSError as exc:
        raise ConfigError(
            f"{RS256_PUBLIC_KEY} is neither a PEM key nor a readable file: {exc.strerror}"
        ) from None
