"""Why a call to an upstream MCP server failed.

::

    UpstreamError                 every failure of a call through an upstream
    ├── UnknownTool               no served tool of that name (or no such server)
    ├── UpstreamNotReady          the server is not connected (connecting, failing, disabled)
    ├── UpstreamTimeout           the call's deadline passed (waiting for a slot included)
    ├── UpstreamDied              the connection ended while the call was in flight
    ├── UpstreamProtocolError     the server answered something that is not MCP
    └── UpstreamRejected          the server answered with a JSON-RPC error (code, message, data)

The SDK's own errors (``MCPError``, pydantic's ``ValidationError``) are translated into
these in one place (:mod:`gateway.mcpfront.upstream`), each naming the server and tool.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "UnknownTool",
    "UpstreamDied",
    "UpstreamError",
    "UpstreamNotReady",
    "UpstreamProtocolError",
    "UpstreamRejected",
    "UpstreamTimeout",
]


class UpstreamError(Exception):
    """A call through an upstream server failed.

    Attributes:
        server: The server's name.
        tool: The tool's own name on that server ("" when none applies).
    """

    def __init__(self, message: str, *, server: str, tool: str = "") -> None:
        super().__init__(message)
        self.server = server
        self.tool = tool


class UnknownTool(UpstreamError):
    """No tool of that name (or no such server) that the caller may call.

    A tool the caller may not call is unknown to them: the MCP front answers both alike
    (JSON-RPC ``-32602 Unknown tool: <name>``), so a refusal does not reveal the tool.

    Attributes:
        name: The name the caller used (``tool`` is the same).
    """

    def __init__(self, message: str = "", *, server: str = "", tool: str) -> None:
        super().__init__(message or f"Unknown tool: {tool}", server=server, tool=tool)

    @property
    def name(self) -> str:
        """The tool's name as the caller gave it."""
        return self.tool


class UpstreamNotReady(UpstreamError):
    """The server is not connected; ``state`` and ``last_error`` say why."""

    def __init__(
        self, message: str, *, server: str, tool: str, state: str, last_error: str
    ) -> None:
        super().__init__(message, server=server, tool=tool)
        self.state = state
        self.last_error = last_error


class UpstreamTimeout(UpstreamError):
    """The call did not finish within its deadline; the upstream request was cancelled."""

    def __init__(self, message: str, *, server: str, tool: str, timeout_seconds: float) -> None:
        super().__init__(message, server=server, tool=tool)
        self.timeout_seconds = timeout_seconds


class UpstreamDied(UpstreamError):
    """The connection to the server ended with the call in flight."""


class UpstreamProtocolError(UpstreamError):
    """The server's answer is not a valid MCP result."""


class UpstreamRejected(UpstreamError):
    """The server answered with a JSON-RPC error, passed on as it is.

    Attributes:
        code: The JSON-RPC error code (e.g. -32602 for invalid params).
        error_message: The server's message.
        data: The server's ``data``, if any.
    """

    def __init__(
        self, *, server: str, tool: str, code: int, error_message: str, data: Any = None
    ) -> None:
        super().__init__(
            f"{server}: {tool} failed with JSON-RPC error {code}: {error_message}",
            server=server,
            tool=tool,
        )
        self.code = code
        self.error_message = error_message
        self.data = data
