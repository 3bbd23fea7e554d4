"""Entry point of the users plugin: ``python -m services.users`` or ``plugmesh serve users``."""

from __future__ import annotations

import sys

from meshkit.server import run_from_env
from services.users.app import build
from services.users.config import SERVICE_NAME, UsersConfig


def main() -> int:
    """Run the users plugin until SIGTERM or SIGINT."""
    return run_from_env(SERVICE_NAME, UsersConfig.from_env, lambda config: build(config).server)


if __name__ == "__main__":
    sys.exit(main())
