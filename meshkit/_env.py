"""Reading numbers from the environment, and the error a setting that cannot be used
raises; :mod:`meshkit.config` re-exports them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

_N = TypeVar("_N", int, float)


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


def env_number(
    env: Mapping[str, str],
    name: str,
    default: float,
    *,
    positive: bool = False,
    unit: str = "a number",
) -> float:
    """Read a number from ``env[name]``; ``default`` when unset or empty.

    Raises:
        ConfigError: the value is not a number (``unit`` says what was expected), or is
            not above zero when ``positive``; the message names the variable.
    """
    return _parse(env, name, default, float, positive=positive, unit=unit)


def env_int(
    env: Mapping[str, str],
    name: str,
    default: int,
    *,
    positive: bool = False,
    unit: str = "a whole number",
) -> int:
    """Read a whole number from ``env[name]``, as :func:`env_number` reads a number."""
    return _parse(env, name, default, int, positive=positive, unit=unit)


def _parse(
    env: Mapping[str, str], name: str, default: _N, kind: type[_N], *, positive: bool, unit: str
) -> _N:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {unit}, got {raw!r}") from None
    if positive and value <= 0:
        raise ConfigError(f"{name} must be positive, got {raw!r}")
    return value
