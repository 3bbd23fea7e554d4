"""Wiring of the machine-users plugin: :func:`build` makes the process from its settings.

::

    plugin = build(MachineUsersConfig.from_env())
    sys.exit(run(plugin.server))

The parts: the database, the event bus (the outbox relay that publishes
``machine_user.*``), the core, the servicer and the gRPC server. Start-up order: the
plugin's tables, then the bus, then serving and registration. On SIGTERM: NOT_SERVING,
deregister, in-flight calls finish within the grace period, the bus drains and closes,
the database closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from services.machineusers.access import Access
from services.machineusers.config import SERVICE_NAME, MachineUsersConfig
from services.machineusers.core import MachineUsers
from services.machineusers.events import OutboxSink
from services.machineusers.service import MachineUserServicer
from services.machineusers.tables import MIGRATIONS

__all__ = ["MachineUsersPlugin", "build"]


@dataclass(frozen=True)
class MachineUsersPlugin:
    """The wired plugin; ``server`` owns the lifecycle of the others."""

    server: PluginServer
    database: Database
    bus: EventBus
    machine_users: MachineUsers


def build(
    config: MachineUsersConfig, *, register: bool = True, clock: Clock = SYSTEM_CLOCK
) -> MachineUsersPlugin:
    """Wire the plugin; nothing runs until ``server.start()``, and ``server.stop()`` stops
    it all.

    Args:
        config: The settings.
        register: Whether to register with the registry.
        clock: Tells the time of creations, rotations, expiries and uses.
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
    machine_users = MachineUsers(
        database,
        OutboxSink(bus),
        max_lifetime=config.max_lifetime,
        last_used_interval=config.last_used_interval,
        clock=clock,
    )
    servicer = Servicer.of(
        machineusers_pb2,
        "MachineUserService",
        machineusers_pb2_grpc.add_MachineUserServiceServicer_to_server,
        MachineUserServicer(machine_users, Access(signing_key(config.mesh.registration_secret))),
    )
    server = PluginServer(
        SERVICE_NAME, [servicer], address=config.address, config=config.mesh, register=register
    )
    database.attach(server, MIGRATIONS)
    bus.attach(server)
    return MachineUsersPlugin(
        server=server, database=database, bus=bus, machine_users=machine_users
    )
