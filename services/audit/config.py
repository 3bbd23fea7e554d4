"""The audit plugin's settings, read once from the environment at the entry point.

| variable | default | meaning |
|---|---|---|
| ``PLUGMESH_AUDIT_RETENTION_DAYS`` | ``0`` | prune entries recorded longer ago; 0: never |
| ``PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS`` | ``3600`` | time between pruning passes |

Besides these, the mesh's settings (:class:`~meshkit.config.MeshConfig`: address,
database, NATS, secret) and the event bus's (:class:`~meshkit.events.EventSettings`).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from meshkit.config import ConfigError, MeshConfig, env_number
from meshkit.events import EventSettings

__all__ = [
    "DEFAULT_ADDRESS",
    "METRICS_ADDRESS",
    "PRUNE_INTERVAL_SECONDS",
    "RETENTION_DAYS",
    "SERVICE_NAME",
    "AuditConfig",
]

#: The plugin's name in the registry, in event sources and in its database file.
SERVICE_NAME = "audit"
#: Where it listens unless ``PLUGMESH_AUDIT_ADDRESS`` says otherwise.
DEFAULT_ADDRESS = "127.0.0.1:50062"
#: Its metrics address on one machine: ``plugmesh up`` serves its metrics there unless
#: ``PLUGMESH_AUDIT_METRICS_ADDRESS`` says otherwise; alone it serves them only when set.
METRICS_ADDRESS = "127.0.0.1:9463"

RETENTION_DAYS = "PLUGMESH_AUDIT_RETENTION_DAYS"
PRUNE_INTERVAL_SECONDS = "PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS"


@dataclass(frozen=True)
class AuditConfig:
    """Settings of the audit process.

    Attributes:
        mesh: The mesh-wide settings.
        events: The event bus's settings.
        retention_days: Age, by record time, after which entries are pruned; 0 keeps
            every entry.
        prune_interval_seconds: Time between pruning passes.
    """

    mesh: MeshConfig = field(default_factory=lambda: MeshConfig.from_env({}))
    events: EventSettings = field(default_factory=EventSettings)
    retention_days: float = 0.0
    prune_interval_seconds: float = 3600.0

    def __post_init__(self) -> None:
        if not math.isfinite(self.retention_days) or self.retention_days < 0:
            raise ConfigError(f"{RETENTION_DAYS} must not be negative, got {self.retention_days}")
        if not math.isfinite(self.prune_interval_seconds) or self.prune_interval_seconds <= 0:
            raise ConfigError(
                f"{PRUNE_INTERVAL_SECONDS} must be greater than 0, "
                f"got {self.prune_interval_seconds}"
            )

    @property
    def address(self) -> str:
        """Where to listen, ``host:port``; port 0 picks a free port."""
        return self.mesh.address_of(SERVICE_NAME, DEFAULT_ADDRESS)

    @property
    def database_url(self) -> str:
        """The audit database: ``PLUGMESH_DATABASE_URL`` or ``<data dir>/audit.db``."""
        return self.mesh.database_url_for(SERVICE_NAME)

    @property
    def retention(self) -> dt.timedelta | None:
        """How long entries are kept; ``None`` for ever."""
        return dt.timedelta(days=self.retention_days) if self.retention_days > 0 else None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> AuditConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        values = os.environ if env is None else env
        return cls(
            mesh=MeshConfig.from_env(values),
            events=EventSettings.from_env(values),
            retention_days=env_number(values, RETENTION_DAYS, 0.0),
            prune_interval_seconds=env_number(values, PRUNE_INTERVAL_SECONDS, 3600.0),
        )
