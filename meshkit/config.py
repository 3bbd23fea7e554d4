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

from meshkit._env import ConfigError as ConfigError
from meshkit._env import env_int as env_int
from meshkit._env import env_number as env_number
from meshkit.otel_settings import OtelSettings
from meshkit.tls_settings import MeshTls

#: Where every process finds the registry unless ``PLUGMESH_REGISTRY_ADDRESS`` says otherwise.
DEFAULT_REGISTRY_ADDRESS = "127.0.0.1:50050"
#: Where a nats-server started for the mesh listens unless ``PLUGMESH_NATS_ADDRESS`` says
#: otherwise; the processes connect there when ``PLUGMESH_NATS_URL`` is unset.
DEFAULT_NATS_ADDRESS = "127.0.0.1:4222"


def metrics_variable(process: str) -> str:
    """Return the environment variable that holds a process's metrics address.

    >>> metrics_variable("machine-users")
    'PLUGMESH_MACHINE_USERS_METRICS_ADDRESS'
    """
    return "PLUGMESH_" + process.upper().replace("-", "_") + "_METRICS_ADDRESS"


def address_variable(name: str) -> str:
    """Return the environment variable that holds the listen address called ``name``.

    >>> address_variable("machine-users")
    'PLUGMESH_MACHINE_USERS_ADDRESS'
    """
    return "PLUGMESH_" + name.upper().replace("-", "_") + "_ADDRESS"


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
    addresses: Mapping[str, str] = field(default_factory=dict)
    """The listen and metrics addresses that are set, by variable
    (``PLUGMESH_<NAME>_ADDRESS``, ``PLUGMESH_<PROCESS>_METRICS_ADDRESS``)."""
    otel: OtelSettings = field(default_factory=OtelSettings)
    """OpenTelemetry: off unless an OTLP endpoint is set (``OTEL_*``)."""
    tls: MeshTls | None = None
    """Mutual TLS inside the mesh (``PLUGMESH_TLS_*``); plaintext when ``None``."""
    nats_tls: MeshTls | None = None
    """The certificate NATS connections present over TLS: the mesh's, unless
    ``PLUGMESH_NATS_TLS=off``; plaintext when ``None``."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MeshConfig:
        """Read the settings from ``env`` (default: the process environment)."""
        env = os.environ if env is None else env
        addresses = {
            name: value.strip()
            for name, value in env.items()
            if name.startswith("PLUGMESH_") and name.endswith("_ADDRESS") and value.strip()
        }
        nats_address = addresses.get("PLUGMESH_NATS_ADDRESS") or DEFAULT_NATS_ADDRESS
        tls = MeshTls.from_env(env)
        nats_tls = (env.get("PLUGMESH_NATS_TLS") or "on").strip().lower()
        if nats_tls not in ("on", "off"):
            raise ConfigError(f"PLUGMESH_NATS_TLS must be on or off, got {nats_tls!r}")
        return cls(
            data_dir=Path(env.get("PLUGMESH_DATA_DIR") or ".plugmesh"),
            registry_address=addresses.get("PLUGMESH_REGISTRY_ADDRESS") or DEFAULT_REGISTRY_ADDRESS,
            registration_secret=env.get("PLUGMESH_REGISTRATION_SECRET") or None,
            nats_url=env.get("PLUGMESH_NATS_URL") or f"nats://{nats_address}",
            database_url=env.get("PLUGMESH_DATABASE_URL") or None,
            log_level=(env.get("PLUGMESH_LOG_LEVEL") or "INFO").upper(),
            shutdown_grace_seconds=env_number(
                env, "PLUGMESH_SHUTDOWN_GRACE_SECONDS", 5.0, unit="a number of seconds"
            ),
            advertise_host=env.get("PLUGMESH_ADVERTISE_HOST") or None,
            addresses=addresses,
            otel=OtelSettings.from_env(env),
            tls=tls,
            nats_tls=tls if nats_tls == "on" else None,
        )

    def address_of(self, name: str, default: str | None = None) -> str:
        """Return the listen address called ``name`` (``PLUGMESH_<NAME>_ADDRESS``), else
        ``default``, the process's own.

        Raises:
            ConfigError: The variable is unset and there is no default.
        """
        variable = address_variable(name)
        address = self.addresses.get(variable) or default
        if not address:
            raise ConfigError(f"no address is configured for {name!r}: set {variable}")
        return address

    def metrics_address_of(self, process: str) -> str | None:
        """Where ``process`` serves its metrics; ``None`` when its variable is unset."""
        return self.addresses.get(metrics_variable(process))

    def database_url_for(self, process: str) -> str:
        """Return the database URL of ``process``: the configured one or its SQLite file."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / (process + '.db')}"
