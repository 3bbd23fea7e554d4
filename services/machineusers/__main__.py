"""Entry point of the machine-users plugin: ``python -m services.machineusers`` or
``plugmesh serve machine-users``."""

from __future__ import annotations

import sys

from meshkit.server import run_from_env
from services.machineusers.app import build
from services.machineusers.config import SERVICE_NAME, MachineUsersConfig


def main() -> int:
    """Run the machine-users plugin until SIGTERM or SIGINT."""
    return run_from_env(
        SERVICE_NAME, MachineUsersConfig.from_env, lambda config: build(config).server
    )


if __name__ == "__main__":
    sys.exit(main())
