"""The machine-users plugin's settings, read once from the environment at the entry point.

| variable | default | meaning |
|---|---|---|
| ``PLUGMESH_MACHINE_USERS_MAX_LIFETIME_SECONDS`` | ``31536000`` | longest lifetime of a machine user and its tokens (365 days); 0: no limit |
| ``PLUGMESH_MACHINE_USERS_LAST_USED_INTERVAL_SECONDS`` | ``60`` | a machine user's last-used time is written at most this often |

Besides these, the mesh's settings (:class:`~meshkit.config.MeshConfig`: address,
database, NATS, secret) and the event bus's (:class:`~meshkit.events.EventSettings`).
"""  # noqa: E501

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
    "LAST_USED_INTERVAL_SECONDS",
    "MAX_LIFETIME_SECONDS",
    "METRICS_ADDRESS",
    "SERVICE_NAME",
    "VARIABLES",
    "MachineUsersConfig",
]

#: The plugin's name in the registry, in event sources and in its database file.
SERVICE_NAME = "machine-users"

#: Where it listens unless ``PLUGMESH_MACHINE_USERS_ADDRESS`` says otherwise.
DEFAULT_ADDRESS = "127.0.0.1:50063"
#: Its metrics address on one machine: ``plugmesh up`` serves its metrics there unless
#: ``PLUGMESH_MACHINE_USERS_METRICS_ADDRESS`` says otherwise; alone it serves them only when set.
METRICS_ADDRESS = "127.0.0.1:9464"

MAX_LIFETIME_SECONDS = "PLUGMESH_MACHINE_USERS_MAX_LIFETIME_SECONDS"
LAST_USED_INTERVAL_SECONDS = "PLUGMESH_MACHINE_USERS_LAST_USED_INTERVAL_SECONDS"
_DEFAULT_MAX_LIFETIME_SECONDS = 365 * 24 * 3600.0
_DEFAULT_LAST_USED_INTERVAL_SECONDS = 60.0

#: Every variable of the plugin: (name, default as shown, meaning), for the README table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        MAX_LIFETIME_SECONDS,
        "31536000",
        "longest lifetime of a machine user and its tokens; a machine user created without"
        " an expiry gets this one (0: no limit)",
    ),
    (
        LAST_USED_INTERVAL_SECONDS,
        "60",
        "a machine user's last-used time is written at most this often (not once per request)",
    ),
)


_SECONDS = "a number of seconds"


@dataclass(frozen=True)
class MachineUsersConfig:
    """Settings of the machine-users process.

    Attributes:
        mesh: The mesh-wide settings.
        events: The event bus's settings.
        max_lifetime_seconds: Longest lifetime of a machine user (and so of its tokens);
            0 for no limit.
        last_used_interval_seconds: Least time between two writes of a machine user's
            last-used time.
    """

    mesh: MeshConfig = field(default_factory=lambda: MeshConfig.from_env({}))
    events: EventSettings = field(default_factory=EventSettings)
    max_lifetime_seconds: float = _DEFAULT_MAX_LIFETIME_SECONDS
    last_used_interval_seconds: float = _DEFAULT_LAST_USED_INTERVAL_SECONDS

    def __post_init__(self) -> None:
        if not math.isfinite(self.max_lifetime_seconds) or self.max_lifetime_seconds < 0:
            raise ConfigError(
                f"{MAX_LIFETIME_SECONDS} must be 0 or more seconds, got {self.max_lifetime_seconds}"
            )
        interval = self.last_used_interval_seconds
        if not math.isfinite(interval) or interval < 0:
            raise ConfigError(
                f"{LAST_USED_INTERVAL_SECONDS} must be 0 or more seconds, got {interval}"
            )

    @property
    def address(self) -> str:
        """Where to listen, ``host:port``; port 0 picks a free port."""
        return self.mesh.address_of(SERVICE_NAME, DEFAULT_ADDRESS)

    @property
    def database_url(self) -> str:
        """The plugin's database: ``PLUGMESH_DATABASE_URL`` or ``<data dir>/machine-users.db``."""
        return self.mesh.database_url_for(SERVICE_NAME)

    @property
    def max_lifetime(self) -> dt.timedelta | None:
        """The longest lifetime of a machine user; None for no limit."""
        if self.max_lifetime_seconds == 0:
            return None
        return dt.timedelta(seconds=self.max_lifetime_seconds)

    @property
    def last_used_interval(self) -> dt.timedelta:
        """Least time between two writes of a machine user's last-used time."""
        return dt.timedelta(seconds=self.last_used_interval_seconds)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MachineUsersConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        values = os.environ if env is None else env
        return cls(
            mesh=MeshConfig.from_env(values),
            events=EventSettings.from_env(values),
            max_lifetime_seconds=env_number(
                values, MAX_LIFETIME_SECONDS, _DEFAULT_MAX_LIFETIME_SECONDS, unit=_SECONDS
            ),
            last_used_interval_seconds=env_number(
                values,
                LAST_USED_INTERVAL_SECONDS,
                _DEFAULT_LAST_USED_INTERVAL_SECONDS,
                unit=_SECONDS,
            ),
        )
