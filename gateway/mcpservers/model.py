"""The admin API's objects: an upstream server as stored; no protobuf, no SQL.

A server is its :class:`~gateway.mcpfront.spec.UpstreamSpec` (what the MCP front runs,
secrets included) plus what only the admin API keeps: a description and its times.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gateway.mcpfront.spec import HttpTransport, StdioTransport, UpstreamSpec

__all__ = ["MAX_DESCRIPTION_LENGTH", "McpServer", "secrets_of"]

MAX_DESCRIPTION_LENGTH = 1024


@dataclass(frozen=True)
class McpServer:
    """An upstream MCP server as the admin API keeps it.

    Attributes:
        spec: How the gateway runs it; its ``env`` or ``headers`` are secrets.
        description: What it is for.
        create_time: When it was added.
        update_time: When it was last changed.
    """

    spec: UpstreamSpec
    description: str
    create_time: dt.datetime
    update_time: dt.datetime

    @property
    def name(self) -> str:
        """Its unique name."""
        return self.spec.name


def secrets_of(spec: UpstreamSpec) -> dict[str, str]:
    """The secret values of ``spec``'s transport: a stdio child's env, an HTTP server's
    headers."""
    transport = spec.transport
    if isinstance(transport, StdioTransport):
        return dict(transport.env)
    assert isinstance(transport, HttpTransport)
    return dict(transport.headers)
