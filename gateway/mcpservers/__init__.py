"""The admin API of the upstream MCP servers: ``plugmesh.mcp.v1.McpServerService``.

The gateway hosts it, on a gRPC port of its own, registered as ``mcp-servers``, and
shaped like a plugin (see ARCHITECTURE.md): servers are kept in the gateway's database
(``sealing`` keeps their env and header values encrypted there), every change publishes
an ``mcp.server.*`` event through the outbox, and every gateway replica follows those
events (``events.Follower``) and applies the servers to its
:class:`gateway.mcpfront.federation.Upstreams` without a restart. A server's status, its
tools and a refresh are what the answering replica sees.
"""
