"""Entry point of the users plugin: ``python -m services.users`` or ``plugmesh serve users``.

:func:`build` wires the parts: the database, the event bus (outbox relay and the
``auth.*`` consumers), the servicer and the gRPC server. Start-up order: the plugin's
tables, then the bus (its tables, NATS, streams, relay, consumers), then serving and
registration. On SIGTERM: NOT_SERVING, deregister, in-flight calls finish within the
grace period, the bus drains and closes, the database closes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer, run
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from services.users.access import Access
from services.users.config import SERVICE_NAME, UsersConfig
from services.users.core import Users
from services.users.events import OutboxSink, subscribe
from services.users.service import UserServicer
from services.users.store import MIGRATIONS

__all__ = ["UsersPlugin", "build", "main"]


@dataclass(frozen=True)
class UsersPlugin:
    """The wired plugin; ``server`` owns the lifecycle of the others."""

    server: PluginServer
    database: Database
    bus: EventBus
    users: Users


def build(config: UsersConfig, *, register: bool = True) -> UsersPlugin:
    """Wire the plugin from ``config``; ``server.start()`` starts it, ``server.stop()``
    stops it all."""
    database = Database(config.database_url)
    bus = EventBus(
        SERVICE_NAME,
        database=database,
        nats_url=config.mesh.nats_url,
        settings=config.events,
        grace_seconds=config.mesh.shutdown_grace_seconds,
    )
    users = Users(database, OutboxSink(bus))
    access = Access(signing_key(config.mesh.registration_secret), users)
    servicer = Servicer.of(
        users_pb2,
        "UserService",
        users_pb2_grpc.add_UserServiceServicer_to_server,
        UserServicer(users, access),
    )
    server = PluginServer(
        SERVICE_NAME, [servicer], address=config.address, config=config.mesh, register=register
    )
    subscribe(bus, users)

    async def migrate() -> None:
        await database.upgrade(MIGRATIONS)

    server.add_startup(migrate)
    server.add_closer(database.close)  # closers run newest first: the bus, then this
    bus.attach(server)
    return UsersPlugin(server=server, database=database, bus=bus, users=users)


def main() -> int:
    """Run the users plugin until SIGTERM or SIGINT."""
    return run(build(UsersConfig.from_env()).server)


if __name__ == "__main__":
    sys.exit(main())
