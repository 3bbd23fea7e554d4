"""Settings every plugmesh process reads once from the environment.

Nothing below an entry point reads ``os.environ``: the entry point calls
:meth:`MeshConfig.from_env` and passes the frozen result down.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

_N = TypeVar("_N", int, float)

DEFAULT_REGISTRY_ADDRESS = "127.0.0.1:50050"
DEFAULT_NATS_ADDRESS = "127.0.0.1:4222"

#: Default listen addresses of the processes, by the name ``plugmesh serve`` knows them by.
DEFAULT_ADDRESSES: Mapping[str, str] = {
    "registry": DEFAULT_REGISTRY_ADDRESS,
    "gateway": "127.0.0.1:50051",
    "gateway-http": "127.0.0.1:8080",
    "users": "127.0.0.1:50061",
    "audit": "127.0.0.1:50062",
    "machine-users": "127.0.0.1:50063",
}


#: Metrics addresses ``plugmesh up`` gives its processes when their variables are unset.
#: A process started on its own serves metrics only when its variable is set.
DEFAULT_METRICS_ADDRESSES: Mapping[str, str] = {
    "registry": "127.0.0.1:9460",
    "gateway": "127.0.0.1:9461",
    "users": "127.0.0.1:9462",
    "audit": "127.0.0.1:9463",
    "machine-users": "127.0.0.1:9464",
}


def metrics_variable(process: str) -> str:
    """Return the environment variable that holds a process's metrics address.

    >>> metrics_variable("machine-users")
    'PLUGMESH_MACHINE_USERS_METRICS_ADDRESS'
    """
    return "PLUGMESH_" + process.upper().replace("-", "_") + "_METRICS_ADDRESS"


def address_variable(process: str) -> str:
    """Return the environment variable that holds a process's listen address.

    >>> address_variable("machine-users")
    'PLUGMESH_MACHINE_USERS_ADDRESS'
    >>> address_variable("gateway")
    'PLUGMESH_GATEWAY_GRPC_ADDRESS'
    """
    if process == "gateway":
        process = "gateway-grpc"
    return "PLUGMESH_" + process.upper().replace("-", "_") + "_ADDRESS"


#: Listen hosts that mean "every interface": nobody can dial them.
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def advertised_host(listen_host: str, configured: str | None) -> str:
    """The host a process tells others to dial, given the host it listens on.

    ``PLUGMESH_ADVERTISE_HOST`` (``configured``) wins. A specific listen host is its own
    answer. A process listening on every interface (a container) advertises the address
    its host name resolves to, which differs between replicas of one service; loopback
    when the name does not resolve.
    """
    if configured:
        return configured
    if listen_host not in WILDCARD_HOSTS:
        return listen_host
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


class ConfigError(ValueError):
    """An environment variable holds a value that cannot be used."""


@dataclass(frozen=True)
class MeshConfig:
    """Settings shared by every process of the mesh."""

    data_dir: Path
    registry_address: str
    registration_secret: str | None
    nats_url: str
    database_url: str | None
    log_level: str
    shutdown_grace_seconds: float
    advertise_host: str | None
    addresses: Mapping[str, str]
    metrics_addresses: Mapping[str, str] = field(default_factory=dict)
    """Metrics addresses that are set, by variable (``PLUGMESH_<PROCESS>_METRICS_ADDRESS``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MeshConfig:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        addresses = {
            name: env.get(address_variable(name)) or default
            for name, default in DEFAULT_ADDRESSES.items()
        }
        nats_address = env.get("PLUGMESH_NATS_ADDRESS") or DEFAULT_NATS_ADDRESS
        return cls(
            data_dir=Path(env.get("PLUGMESH_DATA_DIR") or ".plugmesh"),
            registry_address=addresses["registry"],
            registration_secret=env.get("PLUGMESH_REGISTRATION_SECRET") or None,
            nats_url=env.get("PLUGMESH_NATS_URL") or f"nats://{nats_address}",
            database_url=env.get("PLUGMESH_DATABASE_URL") or None,
            log_level=(env.get("PLUGMESH_LOG_LEVEL") or "INFO").upper(),
            shutdown_grace_seconds=env_number(
                env, "PLUGMESH_SHUTDOWN_GRACE_SECONDS", 5.0, unit="a number of seconds"
            ),
            advertise_host=env.get("PLUGMESH_ADVERTISE_HOST") or None,
            addresses=addresses,
            metrics_addresses={
                name: value.strip()
                for name, value in env.items()
                if name.startswith("PLUGMESH_")
                and name.endswith("_METRICS_ADDRESS")
                and value.strip()
            },
        )

    def address_of(self, process: str) -> str:
        """Return the configured listen address of ``process`` (e.g. ``"users"``)."""
        try:
            return self.addresses[process]
        except KeyError:
            raise ConfigError(f"no address is configured for process {process!r}") from None

    def metrics_address_of(self, process: str) -> str | None:
        """Where ``process`` serves its metrics; ``None`` when its variable is unset."""
        return self.metrics_addresses.get(metrics_variable(process))

    def database_url_for(self, process: str) -> str:
        """Return the database URL of ``process``: the configured one or its SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / (process + '.db')}"


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
