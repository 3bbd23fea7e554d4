"""Wiring of the audit process: database, chain, event subscription, pruning and API.

::

    audit = build(AuditConfig.from_env())
    sys.exit(run(audit.server))

Startup order: the chain's tables, then the event bus (so no event is handled before
the tables exist), then pruning; the gRPC server serves after all of them. Shutdown runs
the other way round and closes the database last.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from services.audit.config import DEFAULT_ADDRESS, AuditConfig
from services.audit.events import EventRecorder
from services.audit.model import Clock
from services.audit.payloads import ContractPayloads, RegistrySchemas
from services.audit.retention import Pruner
from services.audit.service import AuditServicer
from services.audit.store import AuditStore

__all__ = ["SERVICE_NAME", "AuditProcess", "api_server", "build"]

SERVICE_NAME = "audit"


@dataclass(frozen=True)
class AuditProcess:
    """The parts of a running audit process."""

    server: PluginServer
    store: AuditStore
    bus: EventBus
    pruner: Pruner | None


def api_server(
    store: AuditStore, config: AuditConfig, *, address: str | None = None, register: bool = True
) -> PluginServer:
    """The gRPC server of ``AuditService`` over ``store``: it creates the store's tables
    before serving and closes its database after stopping."""
    servicer = AuditServicer(store, identity_key=signing_key(config.mesh.registration_secret))
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
        address=address or config.mesh.address_of(SERVICE_NAME, DEFAULT_ADDRESS),
        config=config.mesh,
        register=register,
    )
    server.add_closer(store.database.close)
    server.add_startup(store.start)
    return server


def build(
    config: AuditConfig,
    *,
    address: str | None = None,
    register: bool = True,
    clock: Clock | None = None,
) -> AuditProcess:
    """Assemble the audit process; nothing runs until ``server.start()``.

    Args:
        config: The settings.
        address: Listen address; the configured one by default.
        register: Whether to register with the registry.
        clock: Gives entries their record time and pruning its cutoff.
    """
    database = Database(config.database_url)
    store = AuditStore(database, clock=clock)
    bus = EventBus(
        SERVICE_NAME,
        database=database,
        nats_url=config.mesh.nats_url,
        settings=config.events,
        grace_seconds=config.mesh.shutdown_grace_seconds,
    )
    # Payloads declared in a producer's own contract are decoded with it (any language).
    schemas = RegistrySchemas(config.mesh.registry_address, config.mesh.registration_secret)
    bus.subscribe(">", EventRecorder(store, ContractPayloads(schemas)))
    server = api_server(store, config, address=address, register=register)
    server.add_closer(schemas.close)  # closers run newest first: after the bus stopped
    bus.attach(server)
    pruner = None
    if config.retention is not None:
        pruner = Pruner(
            store,
            retention=config.retention,
            interval_seconds=config.prune_interval_seconds,
            clock=clock,
        )
        server.add_startup(pruner.start)
        server.add_closer(pruner.close)
    return AuditProcess(server=server, store=store, bus=bus, pruner=pruner)
