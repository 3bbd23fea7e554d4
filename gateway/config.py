"""The gateway's settings, read once from the environment at the entry point.

| variable | default | meaning |
|---|---|---|
| ``PLUGMESH_GATEWAY_GRPC_ADDRESS`` | ``127.0.0.1:50051`` | gRPC ingress |
| ``PLUGMESH_GATEWAY_HTTP_ADDRESS`` | ``127.0.0.1:8080`` | HTTP/JSON |
| ``PLUGMESH_GATEWAY_MCP_SERVERS_ADDRESS`` | ``127.0.0.1:50064`` | MCP servers' admin API |
| ``PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS`` | ``30`` | default gRPC deadline |
| ``PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES`` | ``4194304`` | largest gRPC request message |
| ``PLUGMESH_GATEWAY_METRICS_ADDRESS`` | (none) | Prometheus metrics, also at ``/metrics`` |
| ``PLUGMESH_GATEWAY_TLS_CERT_FILE`` | (none) | TLS of the HTTP and gRPC ports |
| ``PLUGMESH_GATEWAY_TLS_KEY_FILE`` | (none) | its key |
| ``PLUGMESH_GATEWAY_PLAINTEXT`` | ``loopback`` | ``allow``: plaintext on any address |

the HTTP side's ``PLUGMESH_GATEWAY_HTTP_*`` ones (:class:`gateway.http.HttpSettings`), the
authentication's ``PLUGMESH_GATEWAY_JWT_*`` and ``PLUGMESH_GATEWAY_AUTH_*`` ones
(:class:`gateway.auth.AuthSettings`), the MCP front's ``PLUGMESH_GATEWAY_MCP_*`` ones
(:class:`gateway.mcpfront.McpSettings`), the rate limits' ``PLUGMESH_GATEWAY_RATE_LIMIT*``
ones (:class:`gateway.ratelimit.RateLimitSettings`), and the mesh-wide ones of
:class:`meshkit.config.MeshConfig` (registry address, registration secret, shutdown grace,
log level, advertised host).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.addresses import (
    DEFAULT_GRPC_ADDRESS,
    DEFAULT_HTTP_ADDRESS,
    DEFAULT_MCP_SERVERS_ADDRESS,
)
from gateway.auth.settings import AuthSettings
from gateway.front_door import FrontDoorTls
from gateway.http import HttpSettings
from gateway.mcpfront.settings import McpSettings
from gateway.ratelimit.settings import RateLimitSettings
from meshkit.config import MeshConfig, address_variable, env_int, env_number
from meshkit.events import EventSettings

DEFAULT_DEADLINE_SECONDS = 30.0
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class GatewayConfig:
    """Settings of the gateway process.

    Attributes:
        grpc_address: Listen address of the gRPC ingress; port 0 picks a free port.
        http_address: Listen address of the HTTP/JSON server; port 0 picks a free port.
        default_deadline_seconds: Deadline of a call through the gRPC ingress whose client
            sets none; only calls with a single response (a response stream may stay open).
        max_message_bytes: Largest request message the gRPC ingress accepts.
        metrics_address: Where to serve the Prometheus metrics besides the HTTP port's
            ``/metrics``; none when ``None``, port 0 picks a free port.
        http: The HTTP side's settings (body limit, deadlines, OpenAPI title).
        auth: How callers are authenticated (JWT keys, token cache).
        mcp: How the MCP front serves (resource URL, allowed hosts, page size).
        rate_limits: The callers' rate limits (none by default).
        mcp_servers_address: Listen address of the admin API of the upstream MCP servers
            (``plugmesh.mcp.v1.McpServerService``); port 0 picks a free port.
        events: The event bus's settings (the outbox of ``mcp.server.*`` and
            ``tool.call.*``).
        mesh: The mesh-wide settings.
        front_door: TLS of the HTTP and gRPC ports (:mod:`gateway.front_door`).
    """

    grpc_address: str = DEFAULT_GRPC_ADDRESS
    http_address: str = DEFAULT_HTTP_ADDRESS
    default_deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    metrics_address: str | None = None
    http: HttpSettings = field(default_factory=HttpSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    mcp: McpSettings = field(default_factory=McpSettings)
    rate_limits: RateLimitSettings = field(default_factory=RateLimitSettings)
    mcp_servers_address: str = DEFAULT_MCP_SERVERS_ADDRESS
    events: EventSettings = field(default_factory=EventSettings)
    mesh: MeshConfig = field(default_factory=lambda: MeshConfig.from_env({}))
    front_door: FrontDoorTls = field(default_factory=FrontDoorTls)

    @property
    def registry_address(self) -> str:
        """Where the registry serves."""
        return self.mesh.registry_address

    @property
    def database_url(self) -> str:
        """The gateway's database (the upstream MCP servers and the outbox):
        ``PLUGMESH_DATABASE_URL`` or ``<data dir>/gateway.db``."""
        return self.mesh.database_url_for("gateway")

    @property
    def shutdown_grace_seconds(self) -> float:
        """How long calls in flight may finish on shutdown."""
        return self.mesh.shutdown_grace_seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewayConfig:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: a variable holds a value that cannot be used.
        """
        mesh = MeshConfig.from_env(env)
        values = os.environ if env is None else env
        front_door = FrontDoorTls.from_env(values)
        grpc_address = mesh.address_of("gateway-grpc", DEFAULT_GRPC_ADDRESS)
        http_address = mesh.address_of("gateway-http", DEFAULT_HTTP_ADDRESS)
        front_door.check(address_variable("gateway-grpc"), grpc_address)
        front_door.check(address_variable("gateway-http"), http_address)
        return cls(
            front_door=front_door,
            grpc_address=grpc_address,
            http_address=http_address,
            mcp_servers_address=mesh.address_of("gateway-mcp-servers", DEFAULT_MCP_SERVERS_ADDRESS),
            default_deadline_seconds=env_number(
                values,
                "PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS",
                DEFAULT_DEADLINE_SECONDS,
                positive=True,
                unit="a number of seconds",
            ),
            max_message_bytes=env_int(
                values,
                "PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES",
                DEFAULT_MAX_MESSAGE_BYTES,
                positive=True,
                unit="a whole number of bytes",
            ),
            metrics_address=mesh.metrics_address_of("gateway"),
            http=HttpSettings.from_env(values),
            auth=AuthSettings.from_env(values),
            mcp=McpSettings.from_env(values),
            rate_limits=RateLimitSettings.from_env(values),
            events=EventSettings.from_env(values),
            mesh=mesh,
        )
