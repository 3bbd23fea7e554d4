"""The upstream servers' tools as the MCP front serves them: :class:`FederatedTools`.

The :class:`~gateway.mcpfront.toolbox.Toolbox` over the
:class:`~gateway.mcpfront.federation.Upstreams` manager, shaped by each caller's
permissions::

    upstreams = Upstreams(ConnectionSettings(child_environment=...))
    front = McpFront(FederatedTools(upstreams), guard, settings)
    upstreams.add_listener(lambda: spawn(front.tools_changed()))

A caller sees (``tools/list``) and calls (``tools/call``) only the tools its permissions
allow on ``<server>/<tool>`` (the toolkit's :func:`meshkit.permissions.decide`: allow and
deny globs, deny wins, the admin flag). A tool the caller may not call is unknown to
them, answered exactly as a tool that does not exist. An upstream's failure becomes a
JSON-RPC error naming the server; its own JSON-RPC error passes through as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import mcp.types as types
from mcp import MCPError

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.toolbox import Caller, Progress, ToolResult
from gateway.mcpfront.upstream_errors import (
    UnknownTool,
    UpstreamDied,
    UpstreamError,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
)
from meshkit.permissions import decide

__all__ = ["UPSTREAM_UNAVAILABLE", "FederatedTools"]

#: The JSON-RPC code of a call whose server is down, died during the call, or answered
#: what is not MCP (the JSON-RPC "internal error": the gateway could not complete it).
UPSTREAM_UNAVAILABLE = types.INTERNAL_ERROR


class FederatedTools:
    """The tools of every READY upstream server, per caller.

    Args:
        upstreams: The servers; the caller of :meth:`Upstreams.apply` keeps them current.
    """

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def has_server(self, server: str) -> bool:
        """Whether the manager has ``server``, in any state."""
        return self._upstreams.get(server) is not None

    async def list_tools(self, caller: Caller, server: str | None) -> Sequence[types.Tool]:
        """The READY servers' tools ``caller`` may call, under the view's names."""
        return [
            tool
            for tool in self._upstreams.list_tools(server)
            if self._allowed(caller, server, tool.name)
        ]

    def input_schema(
        self, caller: Caller, server: str | None, name: str
    ) -> Mapping[str, Any] | None:
        """The input schema of a listed tool ``caller`` may call; None otherwise."""
        tool = self._upstreams.find_tool(server, name)
        if tool is None or not self._allowed(caller, server, name):
            return None
        return tool.input_schema

    async def call_tool(
        self,
        caller: Caller,
        server: str | None,
        name: str,
        arguments: Mapping[str, Any],
        *,
        meta: Mapping[str, Any],
        progress: Progress,
    ) -> ToolResult:
        """Call the tool after checking the caller's permissions.

        Raises:
            UnknownTool: No such tool, or one ``caller`` may not call.
            mcp.MCPError: The server's own JSON-RPC error (code, message and data as it
                sent them); :data:`UPSTREAM_UNAVAILABLE` when it is not connected, died
                or answered what is not MCP; ``REQUEST_TIMEOUT`` when the call's deadline
                passed. The message names the server.
        """
        if not self._allowed(caller, server, name):
            raise UnknownTool(tool=name)
        try:
            return await self._upstreams.call_tool(
                server, name, dict(arguments), meta=meta, progress=progress
            )
        except UnknownTool:
            raise
        except UpstreamRejected as exc:
            raise MCPError(exc.code, exc.error_message, exc.data) from None
        except UpstreamTimeout as exc:
            raise MCPError(types.REQUEST_TIMEOUT, str(exc), _about(exc)) from None
        except (UpstreamNotReady, UpstreamDied, UpstreamProtocolError) as exc:
            raise MCPError(UPSTREAM_UNAVAILABLE, str(exc), _about(exc)) from None

    def _allowed(self, caller: Caller, server: str | None, name: str) -> bool:
        """Whether ``caller`` may call the view's tool ``name`` (False when unknown)."""
        if server is None:
            try:
                upstream, own = self._upstreams.resolve(name)
            except UnknownTool:
                return False
            server, name = upstream.name, own
        return decide(caller.permissions, server, name).allowed


def _about(exc: UpstreamError) -> dict[str, str]:
    """The ``data`` of an upstream failure: which server and tool."""
    return {"server": exc.server, "tool": exc.tool}
