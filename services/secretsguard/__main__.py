"""Entry point of the secrets-guard plugin: ``python -m services.secretsguard`` or
``plugmesh serve secrets-guard``."""

from __future__ import annotations

import sys

from meshkit.server import run_from_env
from services.secretsguard.app import build
from services.secretsguard.config import SERVICE_NAME, SecretsGuardConfig


def main() -> int:
    """Run the secrets-guard plugin until SIGTERM or SIGINT."""
    return run_from_env(SERVICE_NAME, SecretsGuardConfig.from_env, build)


if __name__ == "__main__":
    sys.exit(main())
