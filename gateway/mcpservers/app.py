"""Wiring of the admin API of the upstream MCP servers, inside the gateway process.

:func:`build` makes its parts from the gateway's database, event bus and upstreams; the
gateway starts and stops them (:class:`gateway.app.Gateway`): after the database is
migrated and the bus runs, the gRPC server serves ``McpServerService`` and registers as
``mcp-servers``; the servers file seeds the database; the database's servers are applied
to this replica, and the follower keeps them applied.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.hooks.applied import CatalogHooks
from gateway.mcpservers.access import Access
from gateway.mcpservers.core import McpServers
from gateway.mcpservers.events import Follower, OutboxSink
from gateway.mcpservers.hook_modes import HookModes
from gateway.mcpservers.sealing import Sealer
from gateway.mcpservers.service import McpServerServicer
from gateway.mcpservers.store import ServerStore
from meshkit.clock import SYSTEM_CLOCK, Clock
from meshkit.config import MeshConfig
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import signing_key
from meshkit.server import PluginServer, Servicer
from meshkit.spans import SpanRecorder
from plugmesh.mcp.v1 import servers_pb2, servers_pb2_grpc

__all__ = ["SERVICE_NAME", "McpServersHost", "build"]

#: The admin API's name in the registry.
SERVICE_NAME = "mcp-servers"


@dataclass(frozen=True)
class McpServersHost:
    """The admin API's parts: its gRPC server, the servers, and the follower."""

    server: PluginServer
    servers: McpServers
    hook_modes: HookModes
    follower: Follower


def build(
    database: Database,
    bus: EventBus,
    upstreams: Upstreams,
    hooks: CatalogHooks,
    *,
    address: str,
    mesh: MeshConfig,
    register: bool = True,
    clock: Clock = SYSTEM_CLOCK,
    spans: SpanRecorder | None = None,
) -> McpServersHost:
    """Wire the admin API; nothing runs until the gateway starts it.

    Args:
        database: The gateway's database (migrated by the gateway).
        bus: The gateway's event bus (started by the gateway).
        upstreams: This replica's upstream servers.
        hooks: This replica's tool-call hooks, whose modes admins may set.
        address: Where ``McpServerService`` listens; port 0 picks a free port.
        mesh: The mesh settings (registry, secret, NATS).
        register: Whether to register with the registry.
        clock: Tells the time of changes.
        spans: The gateway's spans, which the admin API's calls join (traces on).
    """
    servers = McpServers(
        database,
        OutboxSink(bus),
        upstreams,
        ServerStore(Sealer(mesh.registration_secret)),
        clock=clock,
    )
    hook_modes = HookModes(database, bus, hooks, clock=clock)
    servicer = Servicer.of(
        servers_pb2,
        "McpServerService",
        servers_pb2_grpc.add_McpServerServiceServicer_to_server,
        McpServerServicer(servers, hook_modes, Access(signing_key(mesh.registration_secret))),
    )
    server = PluginServer(
        SERVICE_NAME, [servicer], address=address, config=mesh, register=register, spans=spans
    )

    async def reload() -> None:
        await servers.apply()
        await hook_modes.apply()

    return McpServersHost(
        server=server,
        servers=servers,
        hook_modes=hook_modes,
        follower=Follower(mesh.nats_url, reload, nats_tls=mesh.nats_tls),
    )
