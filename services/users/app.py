"""Wiring of the users plugin: :func:`build` makes the process from its settings.

::

    plugin = build(UsersConfig.from_env())
    sys.exit(run(plugin.server))

The parts: the database, the event bus (outbox relay and the ``auth.*`` consumers), the
core, the servicer and the gRPC server. Start-up order: the plugin's tables, then the bus
(its tables, NATS, streams, relay, consumers), then serving and registration. On
SIGTERM: NOT_SERVING, deregister, in-flight calls finish within the grace period, the bus
drains and closes, the database closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from services.users.access import Access
from services.users.config import SERVICE_NAME, UsersConfig
from services.users.core import Users
from services.users.events import OutboxSink, subscribe
from services.users.service import UserServicer
from services.users.tables import MIGRATIONS

__all__ = ["UsersPlugin", "build"]


@dataclass(frozen=True)
class UsersPlugin:
    """The wired plugin; ``server`` owns the lifecycle of the others."""

    server: PluginServer
    database: Database
    bus: EventBus
    users: Users


def build(
    config: UsersConfig, *, register: bool = True, clock: Clock = SYSTEM_CLOCK
) -> UsersPlugin:
    """Wire the plugin; nothing runs until ``server.start()``, and ``server.stop()`` stops
    it all.

    Args:
        config: The settings.
        register: Whether to register with the registry.
        clock: Tells the time of changes and logins.
    """
    database = Database(config.database_url)
    bus = EventBus(
        SERVICE_NAME,
        database=database,
        nats_url=config.mesh.nats_url,
        nats_tls=config.mesh.nats_tls,
        settings=config.events,
        grace_seconds=config.mesh.shutdown_grace_seconds,
    )
    users = Users(database, OutboxSink(bus), clock=clock)
    servicer = Servicer.of(
        users_pb2,
        "UserService",
        users_pb2_grpc.add_UserServiceServicer_to_server,
        UserServicer(users, Access(signing_key(config.mesh.registration_secret))),
    )
    server = PluginServer(
        SERVICE_NAME, [servicer], address=config.address, config=config.mesh, register=register
    )
    subscribe(bus, users, clock=clock)
    database.attach(server, MIGRATIONS)
    bus.attach(server)
    return UsersPlugin(server=server, database=database, bus=bus, users=users)
