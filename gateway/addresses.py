"""Where the gateway listens unless its variables say otherwise.

A module of their own, importing nothing, so that the launcher's table of processes reads
them without loading the gateway (``plugmesh health`` runs as a container's health check).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_GRPC_ADDRESS",
    "DEFAULT_HTTP_ADDRESS",
    "DEFAULT_MCP_SERVERS_ADDRESS",
    "METRICS_ADDRESS",
]

#: The gRPC ingress, unless ``PLUGMESH_GATEWAY_GRPC_ADDRESS`` says otherwise.
DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
#: The HTTP/JSON side, unless ``PLUGMESH_GATEWAY_HTTP_ADDRESS`` says otherwise.
DEFAULT_HTTP_ADDRESS = "127.0.0.1:8080"
#: The admin API of the upstream MCP servers (``plugmesh.mcp.v1.McpServerService``), which
#: the gateway serves on a gRPC port of its own and registers as ``mcp-servers``, unless
#: ``PLUGMESH_GATEWAY_MCP_SERVERS_ADDRESS`` says otherwise.
DEFAULT_MCP_SERVERS_ADDRESS = "127.0.0.1:50064"
#: Its metrics address on one machine: ``plugmesh up`` serves its metrics there unless
#: ``PLUGMESH_GATEWAY_METRICS_ADDRESS`` says otherwise; alone it serves them only when set
#: (and always at the HTTP port's ``/metrics``).
METRICS_ADDRESS = "127.0.0.1:9461"
