"""The gateway's MCP front door: Streamable HTTP at ``/mcp`` and ``/mcp/s/<server>``.

Wiring (the gateway process, :class:`gateway.app.Gateway`)::

    front = McpFront(toolbox, auth.http, McpSettings.from_env(), issuer=jwt_issuer)
    await front.start()                         # the SDK transport's run(), once
    build_app(catalog, upstreams, settings, guard=auth.http, mcp=front)
    ...
    front.drain()                               # end the notification streams
    await http_server.stop()
    await front.close()

The front speaks MCP on the official SDK (its low-level server and its Streamable HTTP
transport, stateless, both protocol eras) and asks a :class:`Toolbox` for the tools of
each caller and view. Modules: :mod:`~gateway.mcpfront.toolbox` (the seam and its
types), :mod:`~gateway.mcpfront.front` (the endpoint), :mod:`~gateway.mcpfront.server`
(the handlers), :mod:`~gateway.mcpfront.legacy` (``list_changed`` and cancellation for
2025 clients without sessions), :mod:`~gateway.mcpfront.callers` (authentication into the
SDK's principal), :mod:`~gateway.mcpfront.paging` (cursors),
:mod:`~gateway.mcpfront.metadata` (RFC 9728), :mod:`~gateway.mcpfront.paths`,
:mod:`~gateway.mcpfront.replies`, :mod:`~gateway.mcpfront.settings`.

Upstream side: :mod:`~gateway.mcpfront.spec` (what a server is),
:mod:`~gateway.mcpfront.upstream` (one server's connection, tools and calls),
:mod:`~gateway.mcpfront.federation` (all of them, under exposed names),
:mod:`~gateway.mcpfront.servers_file` (the ``mcpServers`` file they come from for now),
:mod:`~gateway.mcpfront.federated` (the toolbox over them, per caller's permissions).
"""

from __future__ import annotations

from gateway.mcpfront.front import McpFront
from gateway.mcpfront.settings import McpSettings
from gateway.mcpfront.toolbox import (
    Caller,
    CallerKind,
    Progress,
    Toolbox,
    ToolResult,
    UnknownTool,
)

__all__ = [
    "Caller",
    "CallerKind",
    "McpFront",
    "McpSettings",
    "Progress",
    "ToolResult",
    "Toolbox",
    "UnknownTool",
]
