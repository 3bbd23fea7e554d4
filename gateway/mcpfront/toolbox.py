"""What the MCP front serves: a :class:`Toolbox` of tools, asked on behalf of a :class:`Caller`.

The front (:mod:`gateway.mcpfront.front`) speaks MCP; a toolbox knows the tools. It is
asked for the tools of one view: ``server=None`` is ``/mcp``, where a tool is exposed as
``<server>__<tool>``; ``server="x"`` is ``/mcp/s/x``, where the tools of server ``x``
keep their own names. The toolbox decides what the caller may see and call, and gives
the exposed names; the front pages, maps errors and passes results through.

The gateway's toolbox is :class:`gateway.mcpfront.federated.FederatedTools`.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import mcp.types as types

from gateway.mcpfront.upstream_errors import UnknownTool
from meshkit.permissions import Policy

__all__ = [
    "Caller",
    "CallerKind",
    "ListedTool",
    "Progress",
    "ToolResult",
    "Toolbox",
    "UnknownTool",
]

#: Reports progress of a call to its caller: ``(progress, total, message)``; a toolbox
#: gets None instead when the caller asked for no progress.
Progress: TypeAlias = Callable[[float, float | None, str | None], Awaitable[None]]

#: A ``tools/call`` result, passed to the caller whole: the SDK's model, or the result
#: as a JSON object (``isError``, ``content``, ``structuredContent``, ``_meta``, …) as an
#: upstream sent it. Fields the caller's protocol revision does not know are dropped by
#: the SDK when it writes the answer.
ToolResult: TypeAlias = types.CallToolResult | Mapping[str, Any]


class CallerKind(enum.Enum):
    """Who is calling."""

    PERSON = "person"
    """A person, authenticated by a JWT."""
    MACHINE = "machine"
    """A machine user, authenticated by its token."""


@dataclass(frozen=True)
class Caller:
    """The verified caller of an MCP request.

    Attributes:
        id: The person's user id (the JWT's ``sub``) or the machine user's id.
        kind: A person or a machine user.
        admin: Whether the gateway knows the caller as an admin (ROLE_ADMIN).
        email: The person's email, when the JWT carries one.
        permissions: What the caller may call (``<server>/<tool>`` rules, or the admin
            flag): a machine user's own, a person's user record's. Nothing by default.
    """

    id: str
    kind: CallerKind
    admin: bool = False
    email: str = ""
    permissions: Policy = field(default_factory=Policy)


@dataclass(frozen=True)
class ListedTool:
    """A tool as ``/mcp`` lists it to a caller, with where it lives.

    Attributes:
        server: The upstream server or plugin that serves it.
        tool: Its own name on that server.
        listed_name: Its name on ``/mcp`` (``<server>__<tool>``).
        description: What the server says it does.
    """

    server: str
    tool: str
    listed_name: str
    description: str = ""


class Toolbox(Protocol):
    """The tools the MCP front serves, per caller and view."""

    def has_server(self, server: str) -> bool:
        """Whether ``server`` is configured, whatever its state (a disabled server, or one
        not ready, has a view, just an empty one); the front answers 404 on the view of a
        server that is not."""
        ...

    async def list_tools(self, caller: Caller, server: str | None) -> Sequence[types.Tool]:
        """Every tool of the view that ``caller`` may call, under its exposed name.

        The front sorts them by name and pages them; names must be unique in a view.
        """
        ...

    def input_schema(
        self, caller: Caller, server: str | None, name: str
    ) -> Mapping[str, Any] | None:
        """The input schema of tool ``name`` of the view, without any I/O; None when there
        is no such tool for ``caller``.

        A 2026-07-28 ``tools/call`` checks its ``Mcp-Param-*`` headers against it
        before the call (without it the SDK would list every tool again to find it).
        """
        ...

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
        """Call tool ``name`` of the view for ``caller``.

        Args:
            caller: Who calls.
            server: The view (None: ``/mcp``).
            name: The exposed name the caller used.
            arguments: The call's arguments.
            meta: The request's ``_meta`` without the protocol's own keys (the progress
                token, ``io.modelcontextprotocol/*``), with the call's trace context
                (``traceparent``, ``tracestate``; see :mod:`~gateway.mcpfront.server`).
            progress: Reports progress to the caller; None when the caller asked for none.
            session_id: The caller's MCP session (a handshake-era client's
                ``Mcp-Session-Id``); "" when it has none.
            protocol_version: The MCP revision the caller speaks (its
                ``MCP-Protocol-Version``); "" when it did not say.

        A cancelled request cancels the task awaiting this call.

        Raises:
            UnknownTool: No such tool for ``caller``.
            mcp.MCPError: The call failed as a protocol error (an upstream that is
                down or timed out); the error reaches the caller as it is.
        """
        ...
