"""Settings of the HTTP side, read once at the entry point."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import ConfigError

__all__ = ["HttpSettings"]


@dataclass(frozen=True)
class HttpSettings:
    """How the gateway serves HTTP.

    Attributes:
        body_limit_bytes: Largest request body accepted; larger ones get 413.
        default_timeout_seconds: Deadline of a unary call without ``grpc-timeout`` (a
            server stream without one has none: it may stay open while it sends).
        max_timeout_seconds: Upper bound of any deadline, ``grpc-timeout`` included.
        title: The title of the OpenAPI document and the docs page.
    """

    body_limit_bytes: int = 4 * 1024 * 1024
    default_timeout_seconds: float = 30.0
    max_timeout_seconds: float = 300.0
    title: str = "plugmesh gateway"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """Read ``PLUGMESH_GATEWAY_HTTP_*`` from ``env`` (default: the process environment).

        Raises:
            ConfigError: a variable is not a positive number.
        """
        env = os.environ if env is None else env
        defaults = cls()
        return cls(
            body_limit_bytes=int(
                _positive(env, "PLUGMESH_GATEWAY_HTTP_BODY_LIMIT_BYTES", defaults.body_limit_bytes)
            ),
            default_timeout_seconds=_positive(
                env, "PLUGMESH_GATEWAY_HTTP_TIMEOUT_SECONDS", defaults.default_timeout_seconds
            ),
            max_timeout_seconds=_positive(
                env, "PLUGMESH_GATEWAY_HTTP_MAX_TIMEOUT_SECONDS", defaults.max_timeout_seconds
            ),
        )


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value
