"""The secrets-guard plugin's settings: where it listens (``PLUGMESH_SECRETS_GUARD_ADDRESS``)
and the mesh's. It keeps no state: no database, no events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import MeshConfig

__all__ = ["DEFAULT_ADDRESS", "METRICS_ADDRESS", "SERVICE_NAME", "SecretsGuardConfig"]

#: The plugin's name in the registry, and so its hook's.
SERVICE_NAME = "secrets-guard"

#: Where it listens unless ``PLUGMESH_SECRETS_GUARD_ADDRESS`` says otherwise.
DEFAULT_ADDRESS = "127.0.0.1:50065"
#: Its metrics address on one machine (see the users plugin's).
METRICS_ADDRESS = "127.0.0.1:9465"


@dataclass(frozen=True)
class SecretsGuardConfig:
    """Settings of the secrets-guard process."""

    mesh: MeshConfig

    @property
    def address(self) -> str:
        """Where to listen, ``host:port``; port 0 picks a free port."""
        return self.mesh.address_of(SERVICE_NAME, DEFAULT_ADDRESS)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SecretsGuardConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            meshkit.config.ConfigError: A variable holds something unusable.
        """
        return cls(mesh=MeshConfig.from_env(env))
