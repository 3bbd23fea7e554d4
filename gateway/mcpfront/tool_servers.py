"""Every server whose tools the MCP front serves, as one: :class:`ToolServers`.

Two kinds: the upstream MCP servers the admin API configures
(:class:`~gateway.mcpfront.federation.Upstreams`), and the plugins that offer RPCs as
tools (:class:`~gateway.mcpfront.plugin_tools.PluginTools`). A configured upstream
server wins over a plugin of the same name: the plugin's tools are then not served
(an admin named that server, a plugin only registered). Names follow one rule for both:
``<server>__<tool>`` on ``/mcp``, a tool's own name on ``/mcp/s/<server>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp.types as types

from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.plugin_tools import PluginTool, PluginTools
from gateway.mcpfront.tool_names import exposed_name
from gateway.mcpfront.toolbox import Caller, Progress
from gateway.mcpfront.upstream import State
from gateway.mcpfront.upstream_errors import UnknownTool

__all__ = ["ToolServers"]


class ToolServers:
    """The upstream servers and the plugins' tools, looked up alike.

    Args:
        upstreams: The upstream MCP servers.
        plugins: The plugins' tools; None serves none.
    """

    def __init__(self, upstreams: Upstreams, plugins: PluginTools | None = None) -> None:
        self._upstreams = upstreams
        self._plugins = plugins
        #: The exposed names of the plugins' tools, for the catalog's offer and the
        #: plugin servers an upstream shadows it was built from (a tools/call looks it
        #: up two or three times).
        self._exposed: tuple[object, frozenset[str], dict[str, PluginTool]] | None = None

    def has_server(self, server: str) -> bool:
        """Whether ``server`` is an upstream (in any state) or a plugin offering tools."""
        return self._upstreams.get(server) is not None or bool(self._plugin_tools(server))

    def list_tools(self, server: str | None) -> list[types.Tool]:
        """The tools to list, sorted by name: every server's under exposed names
        (``server`` None), or one server's under their own names."""
        if server is not None:
            if self._upstreams.get(server) is not None:
                return self._upstreams.list_tools(server)
            tools = self._plugin_tools(server)
            return [tools[name].tool for name in sorted(tools)]
        listed = self._upstreams.list_tools()
        for exposed, tool in self._exposed_plugin_tools().items():
            listed.append(tool.tool.model_copy(update={"name": exposed}))
        return sorted(listed, key=lambda tool: tool.name)

    def find_tool(self, server: str | None, name: str) -> types.Tool | None:
        """The listed tool ``name`` of the view (exposed when ``server`` is None)."""
        if server is None:
            found = self._exposed_plugin_tools().get(name)
            return found.tool if found is not None else self._upstreams.find_tool(None, name)
        if self._upstreams.get(server) is not None:
            return self._upstreams.find_tool(server, name)
        plugin = self._plugin_tools(server).get(name)
        return plugin.tool if plugin is not None else None

    def target(self, server: str | None, name: str) -> tuple[str, str] | None:
        """The server and own name that the view's ``name`` calls; None when it names
        no tool. On ``/mcp/s/<server>`` an upstream that is not READY may have tools it
        has not listed yet: the call goes on, to fail as the server's state says."""
        if server is None:
            plugin = self._exposed_plugin_tools().get(name)
            if plugin is not None:
                return plugin.server, plugin.name
            try:
                upstream, own = self._upstreams.resolve(name)
            except UnknownTool:
                return None
            return upstream.name, own
        found = self._upstreams.get(server)
        if found is None:
            return (server, name) if name in self._plugin_tools(server) else None
        if found.state is State.READY and self._upstreams.find_tool(server, name) is None:
            return None
        return server, name

    def admits(self, caller: Caller, server: str, tool: str) -> bool:
        """Whether the tool's own access admits ``caller`` (an admin-only plugin RPC);
        permissions are checked apart."""
        plugin = self._plugin_tools(server).get(tool)
        return plugin is None or not plugin.admin_only or caller.admin

    async def call_tool(
        self,
        caller: Caller,
        server: str,
        tool: str,
        arguments: dict[str, Any],
        *,
        meta: Mapping[str, Any],
        progress: Progress | None,
    ) -> dict[str, Any]:
        """Call ``tool`` of ``server`` for ``caller``.

        Raises:
            UpstreamError: The call failed (see :meth:`Upstreams.call_tool` and
                :meth:`PluginTools.call`).
        """
        plugin = self._plugin_tools(server).get(tool)
        if plugin is not None and self._plugins is not None:
            return await self._plugins.call(caller, plugin, arguments)
        return await self._upstreams.call_tool(
            server, tool, arguments, meta=meta, progress=progress
        )

    def _plugin_tools(self, server: str) -> dict[str, PluginTool]:
        """The tools plugin ``server`` offers, unless an upstream has its name."""
        if self._plugins is None or self._upstreams.get(server) is not None:
            return {}
        return self._plugins.offered().get(server, {})

    def _exposed_plugin_tools(self) -> dict[str, PluginTool]:
        """The plugins' tools under their names on ``/mcp``."""
        if self._plugins is None:
            return {}
        offered = self._plugins.offered()
        shadowed = frozenset(s for s in offered if self._upstreams.get(s) is not None)
        cached = self._exposed
        if cached is not None and cached[0] is offered and cached[1] == shadowed:
            return cached[2]
        exposed = {
            exposed_name(server, name): tool
            for server, tools in offered.items()
            if server not in shadowed
            for name, tool in tools.items()
        }
        self._exposed = (offered, shadowed, exposed)
        return exposed
