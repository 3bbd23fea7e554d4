"""The tool-pins plugin's settings: where it listens (``PLUGMESH_TOOL_PINS_ADDRESS``), its
database (``PLUGMESH_DATABASE_URL``, else ``<data dir>/tool-pins.db``), NATS and the event
bus's settings, all in the README's one table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import MeshConfig
from meshkit.events import EventSettings

__all__ = ["DEFAULT_ADDRESS", "METRICS_ADDRESS", "SERVICE_NAME", "ToolPinsConfig"]

#: The plugin's name in the registry, and so its hook's.
SERVICE_NAME = "tool-pins"

#: Where it listens unless ``PLUGMESH_TOOL_PINS_ADDRESS`` says otherwise.
DEFAULT_ADDRESS = "127.0.0.1:50066"
#: Its metrics address on one machine (see the users plugin's).
METRICS_ADDRESS = "127.0.0.1:9466"


@dataclass(frozen=True)
class ToolPinsConfig:
    """Settings of the tool-pins process."""

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
    def from_env(cls, env: Mapping[str, str] | None = None) -> ToolPinsConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            meshkit.config.ConfigError: A variable holds something unusable.
        """
        return cls(mesh=MeshConfig.from_env(env), events=EventSettings.from_env(env))
