"""Entry point of the machine-users plugin.

Run it with `python -m services.machineusers` or `plugmesh serve machine-users`.

Its contract is served, reflected and registered; its methods answer UNIMPLEMENTED
until the plugin's own issue lands.
"""

from __future__ import annotations

import sys

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, run
from meshkit.unimplemented import unimplemented
from plugmesh.machineusers.v1 import machineusers_pb2


def main() -> int:
    """Run the machine-users plugin until SIGTERM or SIGINT."""
    config = MeshConfig.from_env()
    service = machineusers_pb2.DESCRIPTOR.services_by_name["MachineUserService"]
    server = PluginServer(
        "machine-users",
        [unimplemented(service)],
        address=config.address_of("machine-users"),
        config=config,
    )
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
