"""Entry point: ``python -m registry`` (``plugmesh serve registry``).

Reads :class:`~registry.config.RegistryConfig` from the environment, serves until SIGTERM
or SIGINT, then shuts down gracefully. Its events go to NATS through an outbox in its
own database.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys

from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.logging import configure_logging
from meshkit.server import until_signal
from registry.app import RegistryServer
from registry.config import RegistryConfig


async def serve(config: RegistryConfig) -> int:
    """Run the registry until SIGTERM or SIGINT; return the exit code."""
    database = Database(config.resolved_database_url)
    bus = EventBus(
        "registry",
        database=database,
        nats_url=config.mesh.nats_url,
        nats_tls=config.mesh.nats_tls,
        settings=config.events,
        grace_seconds=config.shutdown_grace_seconds,
        # The registry serves while NATS is away; its events wait in the outbox.
        connect_in_background=True,
    )
    server = RegistryServer(config, event_bus=bus)
    try:
        await until_signal(server.start, server.close)
    finally:
        await database.close()
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
