"""Settings of the HTTP side, read once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.access_log import AccessLog
from gateway.http.cors import CorsPolicy, parse_origins
from meshkit.config import ConfigError, env_int, env_number

__all__ = ["ACCESS_LOG", "CORS_ORIGINS", "HttpSettings"]

CORS_ORIGINS = "PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS"
ACCESS_LOG = "PLUGMESH_GATEWAY_ACCESS_LOG"
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


@dataclass(frozen=True)
class HttpSettings:
    """How the gateway serves HTTP.

    Attributes:
        body_limit_bytes: Largest request body accepted; larger ones get 413.
        default_timeout_seconds: Deadline of a unary call without ``grpc-timeout`` (a
            server stream without one has none: it may stay open while it sends).
        max_timeout_seconds: Upper bound of any deadline, ``grpc-timeout`` included.
        title: The title of the OpenAPI document and the docs page.
        cors: Which browser origins may call (``PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS``);
            none by default.
        access_log: Whether each request gets an access log line
            (``PLUGMESH_GATEWAY_ACCESS_LOG``, on by default).
    """

    body_limit_bytes: int = 4 * 1024 * 1024
    default_timeout_seconds: float = 30.0
    max_timeout_seconds: float = 300.0
    title: str = "plugmesh gateway"
    cors: CorsPolicy = field(default_factory=CorsPolicy)
    access_log: AccessLog = field(default_factory=AccessLog)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """Read ``PLUGMESH_GATEWAY_HTTP_*`` from ``env`` (default: the process environment).

        Raises:
            ConfigError: a variable is not a positive number, or an origin is not one.
        """
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            body_limit_bytes=env_int(
                env,
                "PLUGMESH_GATEWAY_HTTP_BODY_LIMIT_BYTES",
                defaults.body_limit_bytes,
                positive=True,
                unit="a whole number of bytes",
            ),
            default_timeout_seconds=env_number(
                env,
                "PLUGMESH_GATEWAY_HTTP_TIMEOUT_SECONDS",
                defaults.default_timeout_seconds,
                positive=True,
            ),
            max_timeout_seconds=env_number(
                env,
                "PLUGMESH_GATEWAY_HTTP_MAX_TIMEOUT_SECONDS",
                defaults.max_timeout_seconds,
                positive=True,
            ),
            cors=CorsPolicy(parse_origins(env.get(CORS_ORIGINS, ""), CORS_ORIGINS)),
            access_log=AccessLog(_switch(env, ACCESS_LOG, default=True)),
        )


def _switch(env: Mapping[str, str], variable: str, *, default: bool) -> bool:
    value = env.get(variable, "").strip().lower()
    if not value:
        return default
    if value not in _SWITCH:
        raise ConfigError(f"{variable} must be on or off, not {value!r}")
    return _SWITCH[value]
