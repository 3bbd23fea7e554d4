"""Entry point of the gateway: `python -m gateway` or `plugmesh serve gateway`.

Serves the gRPC ingress (proxy, aggregated reflection, health) on
``PLUGMESH_GATEWAY_GRPC_ADDRESS`` and HTTP/JSON on ``PLUGMESH_GATEWAY_HTTP_ADDRESS``,
registers as "gateway", and stops gracefully on SIGTERM or SIGINT.
"""

from __future__ import annotations

import sys

from gateway.app import run
from gateway.config import GatewayConfig
from meshkit.config import ConfigError


def main() -> int:
    """Run the gateway until SIGTERM or SIGINT; returns the exit code."""
    try:
        config = GatewayConfig.from_env()
    except ConfigError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
