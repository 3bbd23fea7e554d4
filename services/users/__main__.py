"""Entry point of the users plugin: `python -m services.users` or `plugmesh serve users`.

Its contract is served, reflected and registered; its methods answer UNIMPLEMENTED
until the plugin's own issue lands.
"""

from __future__ import annotations

import sys

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, run
from meshkit.unimplemented import unimplemented
from plugmesh.users.v1 import users_pb2


def main() -> int:
    """Run the users plugin until SIGTERM or SIGINT."""
    config = MeshConfig.from_env()
    service = users_pb2.DESCRIPTOR.services_by_name["UserService"]
    server = PluginServer(
        "users", [unimplemented(service)], address=config.address_of("users"), config=config
    )
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
