"""The admin API's tables: one row per upstream MCP server, one per hook whose mode an
admin set, and their migrations.

The transport is a JSON object without its secrets (``{"stdio": {"command", "args",
"cwd"}}`` or ``{"streamable_http": {"url"}}``); the secret values (a stdio child's env,
an HTTP server's headers) are in ``secrets``, sealed (:mod:`gateway.mcpservers.sealing`),
and their names in ``secret_names``. Times are naive UTC.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, DateTime, MetaData, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from gateway.mcpfront.spec import HttpTransport, StdioTransport, Transport
from meshkit.migrations import Migrations

__all__ = [
    "MIGRATIONS",
    "HookModeRow",
    "ServerRow",
    "metadata",
    "transport_json",
    "transport_of",
]


class _Table(SQLModel, registry=registry()):
    """Base of the admin API's tables: their own metadata, not sqlmodel's global one."""


class ServerRow(_Table, table=True):
    """One upstream MCP server."""

    __tablename__ = "mcp_servers"

    name: str = Field(primary_key=True, max_length=31)
    description: str = Field(default="", max_length=1024)
    transport: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    secrets: str = Field(sa_column=Column(Text, nullable=False))
    secret_names: list[str] = Field(sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    include_tools: list[str] = Field(sa_column=Column(JSON, nullable=False))
    exclude_tools: list[str] = Field(sa_column=Column(JSON, nullable=False))
    call_timeout_millis: int
    max_concurrent_calls: int
    create_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))
    update_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))


class HookModeRow(_Table, table=True):
    """The mode an admin set for one tool-call hook, over the one its plugin declares."""

    __tablename__ = "mcp_hook_modes"

    name: str = Field(primary_key=True, max_length=63)
    mode: str = Field(max_length=16)
    update_time: dt.datetime = Field(sa_column=Column(DateTime(), nullable=False))


#: The admin API's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied when the gateway starts.
MIGRATIONS = Migrations(
    Path(__file__).parent / "migrations", "alembic_version_mcp_servers", metadata
)


def transport_json(transport: Transport) -> dict[str, Any]:
    """The row's form of ``transport``, without its secrets."""
    if isinstance(transport, StdioTransport):
        return {
            "stdio": {
                "command": transport.command,
                "args": list(transport.args),
                "cwd": transport.cwd,
            }
        }
    return {"streamable_http": {"url": transport.url}}


def transport_of(value: dict[str, Any], secrets: dict[str, str]) -> Transport:
    """The transport a row stores, with its opened secrets."""
    if "stdio" in value:
        stdio = value["stdio"]
        return StdioTransport(
            command=stdio["command"], args=tuple(stdio["args"]), env=secrets, cwd=stdio["cwd"]
        )
    return HttpTransport(url=value["streamable_http"]["url"], headers=secrets)
