"""Wiring of the audit plugin: :func:`build` makes the process from its settings.

::

    plugin = build(AuditConfig.from_env())
    sys.exit(run(plugin.server))

The parts: the database, the log, the event bus (every event of the mesh recorded), the
contracts of event producers (from the registry), pruning, the servicer and the gRPC
server. Start-up order: the plugin's tables and the chain row, then the event bus (so no
event is handled before the tables exist), then pruning; the gRPC server serves after
all of them. Shutdown runs the other way round and closes the database last.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.access import Access
from services.audit.config import SERVICE_NAME, AuditConfig
from services.audit.core import AuditLog
from services.audit.events import EventRecorder, subscribe
from services.audit.payloads import ContractPayloads, RegistrySchemas
from services.audit.retention import Pruner
from services.audit.service import AuditServicer
from services.audit.tables import MIGRATIONS

__all__ = ["AuditPlugin", "api_server", "build"]


@dataclass(frozen=True)
class AuditPlugin:
    """The wired plugin; ``server`` owns the lifecycle of the others."""

    server: PluginServer
    database: Database
    bus: EventBus
    audit_log: AuditLog
    pruner: Pruner | None


def build(
    config: AuditConfig,
    *,
    address: str | None = None,
    register: bool = True,
    clock: Clock = SYSTEM_CLOCK,
) -> AuditPlugin:
    """Wire the plugin; nothing runs until ``server.start()``, and ``server.stop()`` stops
    it all.

    Args:
        config: The settings.
        address: Listen address; the configured one by default.
        register: Whether to register with the registry.
        clock: Gives entries their record time and pruning its cutoff.
    """
    database = Database(config.database_url)
    audit_log = AuditLog(database, clock=clock)
    bus = EventBus(
        SERVICE_NAME,
        database=database,
        nats_url=config.mesh.nats_url,
        nats_tls=config.mesh.nats_tls,
        settings=config.events,
        grace_seconds=config.mesh.shutdown_grace_seconds,
    )
    # Payloads declared in a producer's own contract are decoded with it (any language).
    schemas = RegistrySchemas(
        config.mesh.registry_address, config.mesh.registration_secret, tls=config.mesh.tls
    )
    subscribe(bus, EventRecorder(audit_log, ContractPayloads(schemas)))
    server = api_server(audit_log, config, address=address, register=register)
    server.add_closer(schemas.close)  # closers run newest first: after the bus stopped
    bus.attach(server)
    pruner = None
    if config.retention is not None:
        pruner = Pruner(
            audit_log,
            retention=config.retention,
            interval_seconds=config.prune_interval_seconds,
            clock=clock,
        )
        server.add_startup(pruner.start)
        server.add_closer(pruner.close)
    return AuditPlugin(
        server=server, database=database, bus=bus, audit_log=audit_log, pruner=pruner
    )


def api_server(
    audit_log: AuditLog,
    config: AuditConfig,
    *,
    address: str | None = None,
    register: bool = True,
) -> PluginServer:
    """The gRPC server of ``AuditService`` over ``audit_log``, without the event bus: it
    migrates the log's database and creates the chain row before serving, and closes the
    database after stopping."""
    servicer = AuditServicer(audit_log, Access(signing_key(config.mesh.registration_secret)))
    server = PluginServer(
        SERVICE_NAME,
        [
            Servicer.of(
                audit_pb2,
                "AuditService",
                audit_pb2_grpc.add_AuditServiceServicer_to_server,
                servicer,
            )
        ],
        address=address or config.address,
        config=config.mesh,
        register=register,
    )
    audit_log.database.attach(server, MIGRATIONS)
    server.add_startup(audit_log.start)
    return server
