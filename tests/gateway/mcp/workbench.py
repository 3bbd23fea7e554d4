"""A toolbox made for the MCP front's tests: two servers of small tools, in memory.

``alpha`` has ``echo``, ``slow`` (reports progress, then, with ``hold``, waits until
cancelled), ``rich`` (a result with every content type, ``isError``,
``structuredContent`` and ``_meta``), ``whoami`` (the caller as the front handed it),
``add`` (with an output schema), ``nap`` (takes ``seconds`` to answer) and a few
fillers to page through; ``beta`` has ``echo`` and ``whoami``. On ``/mcp`` they are
``alpha__echo``…, on ``/mcp/s/alpha`` ``echo``…. Every call and listing is recorded, so
a test sees what reached the toolbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp.types as types

from gateway.mcpfront import Caller, Progress, ToolResult, UnknownTool

TEXT = {"type": "object", "properties": {"text": {"type": "string"}}}
STEPS = {
    "type": "object",
    "properties": {"steps": {"type": "integer"}, "hold": {"type": "boolean"}},
}
NUMBERS = {
    "type": "object",
    "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
    "required": ["a", "b"],
}
SUM = {"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]}
FILLERS = tuple(f"filler{n}" for n in range(1, 6))

#: The result of ``rich``, as an upstream would send it.
RICH: dict[str, Any] = {
    "isError": True,
    "content": [
        {
            "type": "text",
            "text": "t",
            "_meta": {"k": "text-meta"},
            "annotations": {"priority": 0.5},
        },
        {"type": "image", "data": "aGk=", "mimeType": "image/png"},
        {"type": "audio", "data": "aGk=", "mimeType": "audio/wav"},
        {"type": "resource_link", "uri": "file:///x", "name": "x", "mimeType": "text/plain"},
        {"type": "resource", "resource": {"uri": "file:///y", "text": "y"}},
    ],
    "structuredContent": {"n": "not-an-int", "nested": [1, {"a": None}]},
    "_meta": {"dev.plugmesh/decision": "allow", "io.modelcontextprotocol/serverInfo": {"x": 1}},
}


@dataclass
class Call:
    """A call that reached the toolbox."""

    caller: Caller
    server: str | None
    name: str
    arguments: Mapping[str, Any]
    meta: Mapping[str, Any]


def _tool(name: str, schema: dict[str, Any], **extra: Any) -> types.Tool:
    return types.Tool(name=name, description=f"the {name} tool", input_schema=schema, **extra)


SERVERS: dict[str, tuple[types.Tool, ...]] = {
    "alpha": (
        _tool("echo", TEXT),
        _tool("slow", STEPS),
        _tool("rich", {"type": "object"}),
        _tool("whoami", {"type": "object"}),
        _tool("add", NUMBERS, output_schema=SUM),
        _tool("nap", {"type": "object", "properties": {"seconds": {"type": "number"}}}),
        *(_tool(name, {"type": "object"}) for name in FILLERS),
    ),
    "beta": (_tool("echo", TEXT), _tool("whoami", {"type": "object"})),
}


@dataclass
class Workbench:
    """The test toolbox; ``replica`` names the gateway it serves in answers."""

    replica: str = "r1"
    calls: list[Call] = field(default_factory=list)
    listings: list[str | None] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def tools(self, server: str | None) -> dict[str, tuple[str, types.Tool]]:
        """The view's tools by exposed name, with the server each belongs to."""
        found: dict[str, tuple[str, types.Tool]] = {}
        for name, tools in SERVERS.items():
            if server is not None and name != server:
                continue
            for tool in tools:
                exposed = tool.name if server is not None else f"{name}__{tool.name}"
                found[exposed] = (name, tool.model_copy(update={"name": exposed}))
        return found

    def has_server(self, server: str) -> bool:
        return server in SERVERS

    async def list_tools(self, caller: Caller, server: str | None) -> Sequence[types.Tool]:
        self.listings.append(server)
        return [tool for _, tool in self.tools(server).values()]

    def input_schema(
        self, caller: Caller, server: str | None, name: str
    ) -> Mapping[str, Any] | None:
        found = self.tools(server).get(name)
        return found[1].input_schema if found is not None else None

    async def call_tool(
        self,
        caller: Caller,
        server: str | None,
        name: str,
        arguments: Mapping[str, Any],
        *,
        meta: Mapping[str, Any],
        progress: Progress | None,
        session_id: str = "",
        protocol_version: str = "",
    ) -> ToolResult:
        found = self.tools(server).get(name)
        if found is None:
            raise UnknownTool(tool=name)
        self.calls.append(Call(caller, server, name, dict(arguments), dict(meta)))
        tool = found[1].name.rpartition("__")[2]
        if tool == "echo":
            text = f"{self.replica}:{arguments.get('text', '')}"
            return types.CallToolResult(content=[types.TextContent(text=text)])
        if tool == "slow":
            steps = int(arguments.get("steps", 3))
            return await self._slow(name, steps, bool(arguments.get("hold")), progress)
        if tool == "rich":
            return RICH
        if tool == "whoami":
            who = {"id": caller.id, "kind": caller.kind.value, "admin": caller.admin}
            return types.CallToolResult(
                content=[types.TextContent(text=caller.id)], structured_content=who
            )
        if tool == "add":
            total = float(arguments["a"]) + float(arguments["b"])
            return types.CallToolResult(
                content=[types.TextContent(text=str(total))], structured_content={"sum": total}
            )
        if tool == "nap":
            await asyncio.sleep(float(arguments.get("seconds", 0)))
        return types.CallToolResult(content=[types.TextContent(text=tool)])

    async def _slow(
        self, name: str, steps: int, hold: bool, progress: Progress | None
    ) -> ToolResult:
        """Report ``steps`` progress steps; with ``hold``, then wait until cancelled."""
        try:
            for step in range(1, steps + 1):
                if progress is not None:
                    await progress(step, steps, f"step {step}")
            if hold:
                await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.append(name)
            raise
        return types.CallToolResult(content=[types.TextContent(text=f"done {steps}")])
