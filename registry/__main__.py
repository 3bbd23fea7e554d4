"""Entry point: ``python -m registry`` (``plugmesh serve registry``).

Reads :class:`~registry.config.RegistryConfig` from the environment, serves until SIGTERM
or SIGINT, then shuts down gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from meshkit.logging import configure_logging
from meshkit.server import until_signal
from registry.app import RegistryServer
from registry.config import RegistryConfig


async def serve(config: RegistryConfig) -> int:
    """Run the registry until SIGTERM or SIGINT; return the exit code."""
    server = RegistryServer(config)
    await until_signal(server.start, server.close)
    return 0


def main() -> int:
    """Read the configuration from the environment and run the registry."""
    config = RegistryConfig.from_env()
    configure_logging("registry", config.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(config))
    return 130


if __name__ == "__main__":
    sys.exit(main())
