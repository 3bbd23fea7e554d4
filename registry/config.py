"""The registry's settings, read once from the environment at the entry point.

| variable | default | meaning |
|---|---|---|
| ``PLUGMESH_REGISTRY_ADDRESS`` | ``127.0.0.1:50050`` | listen address; port 0 picks a free port |
| ``PLUGMESH_DATA_DIR`` | ``.plugmesh`` | holds ``registry.db`` |
| ``PLUGMESH_REGISTRY_DATABASE_URL`` | | SQLAlchemy URL of the registry's database |
| ``PLUGMESH_DATABASE_URL`` | | used when the registry-specific URL is unset |
| ``PLUGMESH_REGISTRATION_SECRET`` | | required in registration calls when set |
| ``PLUGMESH_REGISTRY_LEASE_SECONDS`` | ``10`` | lease length; instances renew well before |
| ``PLUGMESH_REGISTRY_REFLECTION_TIMEOUT_SECONDS`` | ``5`` | deadline for fetching descriptors |
| ``PLUGMESH_SHUTDOWN_GRACE_SECONDS`` | ``5`` | how long calls in flight may finish on stop |
| ``PLUGMESH_LOG_LEVEL`` | ``INFO`` | |
| ``PLUGMESH_REGISTRY_METRICS_ADDRESS`` | | Prometheus metrics at ``/metrics``, when set |
| ``PLUGMESH_NATS_URL`` | | where its events go (``registry.instance.*``) |
| ``PLUGMESH_EVENTS_*`` | | the event bus's settings (:class:`~meshkit.events.EventSettings`) |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from meshkit.config import DEFAULT_REGISTRY_ADDRESS, MeshConfig, env_number
from meshkit.events import EventSettings

#: Where the registry listens unless ``PLUGMESH_REGISTRY_ADDRESS`` says otherwise: where
#: every process looks for it.
DEFAULT_ADDRESS = DEFAULT_REGISTRY_ADDRESS
#: Its metrics address on one machine: ``plugmesh up`` serves its metrics there unless
#: ``PLUGMESH_REGISTRY_METRICS_ADDRESS`` says otherwise; alone it serves them only when set.
METRICS_ADDRESS = "127.0.0.1:9460"


@dataclass(frozen=True)
class RegistryConfig:
    """Settings of the registry process."""

    address: str = DEFAULT_ADDRESS
    data_dir: Path = Path(".plugmesh")
    database_url: str | None = None
    registration_secret: str | None = None
    lease_seconds: float = 10.0
    reflection_timeout_seconds: float = 5.0
    shutdown_grace_seconds: float = 5.0
    log_level: str = "INFO"
    mesh: MeshConfig = field(default_factory=lambda: MeshConfig.from_env({}))
    """The mesh-wide settings the gRPC server is built with, NATS's address among them."""
    events: EventSettings = field(default_factory=EventSettings)
    """Streams, outbox and retries of the registry's event bus."""

    @property
    def resolved_database_url(self) -> str:
        """The configured database URL, or the SQLite file ``<data_dir>/registry.db``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'registry.db'}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RegistryConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: a variable holds a value that cannot be used.
        """
        mesh = MeshConfig.from_env(env)
        values = os.environ if env is None else env
        return cls(
            address=mesh.registry_address,
            data_dir=mesh.data_dir,
            database_url=values.get("PLUGMESH_REGISTRY_DATABASE_URL") or mesh.database_url,
            registration_secret=mesh.registration_secret,
            lease_seconds=_positive_seconds(values, "PLUGMESH_REGISTRY_LEASE_SECONDS", 10.0),
            reflection_timeout_seconds=_positive_seconds(
                values, "PLUGMESH_REGISTRY_REFLECTION_TIMEOUT_SECONDS", 5.0
            ),
            shutdown_grace_seconds=mesh.shutdown_grace_seconds,
            log_level=mesh.log_level,
            mesh=mesh,
            events=EventSettings.from_env(values),
        )


def _positive_seconds(env: Mapping[str, str], name: str, default: float) -> float:
    return env_number(env, name, default, positive=True, unit="a number of seconds")
