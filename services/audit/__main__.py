"""Entry point of the audit plugin: ``python -m services.audit`` or ``plugmesh serve audit``."""

from __future__ import annotations

import sys

from meshkit.server import run_from_env
from services.audit.app import build
from services.audit.config import SERVICE_NAME, AuditConfig


def main() -> int:
    """Run the audit plugin until SIGTERM or SIGINT."""
    return run_from_env(SERVICE_NAME, AuditConfig.from_env, lambda config: build(config).server)


if __name__ == "__main__":
    sys.exit(main())
