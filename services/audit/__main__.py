"""Entry point of the audit plugin: `python -m services.audit` or `plugmesh serve audit`.

Its contract is served, reflected and registered; its methods answer UNIMPLEMENTED
until the plugin's own issue lands.
"""

from __future__ import annotations

import sys

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, run
from meshkit.unimplemented import unimplemented
from plugmesh.audit.v1 import audit_pb2


def main() -> int:
    """Run the audit plugin until SIGTERM or SIGINT."""
    config = MeshConfig.from_env()
    service = audit_pb2.DESCRIPTOR.services_by_name["AuditService"]
    server = PluginServer(
        "audit", [unimplemented(service)], address=config.address_of("audit"), config=config
    )
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
