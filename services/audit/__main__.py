"""Entry point of the audit plugin: `python -m services.audit` or `plugmesh serve audit`.

Reads :class:`~services.audit.config.AuditConfig` from the environment, records every
event of the bus and serves ``plugmesh.audit.v1.AuditService`` until SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys

from meshkit.server import run
from services.audit.app import build
from services.audit.config import AuditConfig


def main() -> int:
    """Run the audit plugin until SIGTERM or SIGINT."""
    return run(build(AuditConfig.from_env()).server)


if __name__ == "__main__":
    sys.exit(main())
