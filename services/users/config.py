"""The users plugin's settings, read once from the environment by its entry point.

Nothing of its own: where it listens (``PLUGMESH_USERS_ADDRESS``), its database
(``PLUGMESH_DATABASE_URL``, else ``<data dir>/users.db``), the mesh secret that signs
identities (``PLUGMESH_REGISTRATION_SECRET``), NATS (``PLUGMESH_NATS_URL``) and the event
bus's ``PLUGMESH_EVENTS_*`` settings, all in the README's one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import MeshConfig
from meshkit.events import EventSettings

__all__ = ["DEFAULT_ADDRESS", "METRICS_ADDRESS", "SERVICE_NAME", "UsersConfig"]

#: The plugin's name in the registry, in event sources and in its database file.
SERVICE_NAME = "users"

#: Where it listens unless ``PLUGMESH_USERS_ADDRESS`` says otherwise.
DEFAULT_ADDRESS = "127.0.0.1:50061"
#: Its metrics address on one machine: ``plugmesh up`` serves its metrics there unless
#: ``PLUGMESH_USERS_METRICS_ADDRESS`` says otherwise; alone it serves them only when set.
METRICS_ADDRESS = "127.0.0.1:9462"


@dataclass(frozen=True)
class UsersConfig:
    """Settings of the users process."""

    mesh: MeshConfig
    events: EventSettings

    @property
    def address(self) -> str:
        """Where to listen, ``host:port``; port 0 picks a free port."""
        return self.mesh.address_of(SERVICE_NAME, DEFAULT_ADDRESS)

    @property
    def database_url(self) -> str:
        """The plugin's database."""
        return self.mesh.database_url_for(SERVICE_NAME)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> UsersConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            meshkit.config.ConfigError: A variable holds something unusable.
        """
        return cls(mesh=MeshConfig.from_env(env), events=EventSettings.from_env(env))
