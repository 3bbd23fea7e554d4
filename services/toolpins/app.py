"""Wiring of the tool-pins plugin: :func:`build` makes the process from its settings.

Its own ``ToolPinService`` (which declares the hook) and
``plugmesh.mcp.v1.ToolCallHookService`` on one port; the database (pins, announced
changes) with the event bus's outbox; discovery, to ask the gateway's
``McpServerService`` for a server's tools.
"""

from __future__ import annotations

from dataclasses import dataclass

from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.db import Database
from meshkit.discovery import Discovery
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from plugmesh.mcp.v1 import hooks_pb2, hooks_pb2_grpc, servers_pb2_grpc
from plugmesh.toolpins.v1 import toolpins_pb2, toolpins_pb2_grpc
from services.toolpins.config import SERVICE_NAME, ToolPinsConfig
from services.toolpins.hook import ToolPinsHook
from services.toolpins.pins import ToolPins
from services.toolpins.service import ToolPinServicer
from services.toolpins.tables import MIGRATIONS

__all__ = ["ToolPinsPlugin", "build"]

#: The gateway's admin API of the upstream servers.
SERVERS = "plugmesh.mcp.v1.McpServerService"


@dataclass(frozen=True)
class ToolPinsPlugin:
    """The wired plugin; ``server`` owns the lifecycle of the others."""

    server: PluginServer
    database: Database
    bus: EventBus
    pins: ToolPins


def build(
    config: ToolPinsConfig, *, register: bool = True, clock: Clock = SYSTEM_CLOCK
) -> ToolPinsPlugin:
    """Wire the plugin; nothing runs until ``server.start()``."""
    database = Database(config.database_url)
    bus = EventBus(
        SERVICE_NAME,
        database=database,
        nats_url=config.mesh.nats_url,
        nats_tls=config.mesh.nats_tls,
        settings=config.events,
        grace_seconds=config.mesh.shutdown_grace_seconds,
    )
    pins = ToolPins(database, bus, clock=clock)
    discovery = Discovery(
        config.mesh.registry_address,
        secret=config.mesh.registration_secret,
        tls=config.mesh.tls,
    )
    servers = servers_pb2_grpc.McpServerServiceStub(discovery.channel(SERVERS))
    server = PluginServer(
        SERVICE_NAME,
        [
            Servicer.of(
                toolpins_pb2,
                "ToolPinService",
                toolpins_pb2_grpc.add_ToolPinServiceServicer_to_server,
                ToolPinServicer(pins, servers, signing_key(config.mesh.registration_secret)),
            ),
            Servicer.of(
                hooks_pb2,
                "ToolCallHookService",
                hooks_pb2_grpc.add_ToolCallHookServiceServicer_to_server,
                ToolPinsHook(pins),
            ),
        ],
        address=config.address,
        config=config.mesh,
        register=register,
    )
    database.attach(server, MIGRATIONS)
    bus.attach(server)
    discovery.attach(server)
    return ToolPinsPlugin(server=server, database=database, bus=bus, pins=pins)
