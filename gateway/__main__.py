"""Entry point of the gateway: `python -m gateway` or `plugmesh serve gateway`.

For now it serves health and reflection on its gRPC port and registers as "gateway";
transcoding and the gRPC ingress proxy come with the gateway issue.
"""

from __future__ import annotations

import sys

from meshkit.config import MeshConfig
from meshkit.server import PluginServer, run

VERSION = "0.1.0"


def main() -> int:
    """Run the gateway until SIGTERM or SIGINT."""
    config = MeshConfig.from_env()
    server = PluginServer(
        "gateway", [], address=config.address_of("gateway"), config=config, version=VERSION
    )
    return run(server)


if __name__ == "__main__":
    sys.exit(main())
