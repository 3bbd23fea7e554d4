"""MCP clients for the tests: the SDK's ``Client`` in both eras, and raw HTTP for what
the SDK hides (it turns an HTTP 404 into ``-32601``, and cannot speak 2025-06-18)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.session import MessageHandlerFnT
from mcp.client.streamable_http import streamable_http_client

#: ``Client`` modes: the current revision, and the handshake era (2025-11-25).
MODERN = "2026-07-28"
LEGACY = "legacy"
#: Both eras, for ``pytest.mark.parametrize("mode", ERAS)``.
ERAS = [pytest.param(MODERN, id="2026-07-28"), pytest.param(LEGACY, id="2025-11-25")]

ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
#: The per-request envelope of a 2026-07-28 request.
MODERN_META = {
    "io.modelcontextprotocol/protocolVersion": MODERN,
    "io.modelcontextprotocol/clientCapabilities": {},
    "io.modelcontextprotocol/clientInfo": {"name": "raw-test", "version": "0"},
}


@contextlib.asynccontextmanager
async def connected(
    url: str,
    token: str,
    mode: str,
    *,
    message_handler: MessageHandlerFnT | None = None,
    fresh_connections: bool = False,
) -> AsyncIterator[Client]:
    """The SDK's client of ``url`` with ``token``, in ``mode``; ``fresh_connections``
    opens a TCP connection per request (so a round-robin proxy alternates replicas)."""
    keepalive = 0 if fresh_connections else 20  # 20: httpx's default
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        limits=httpx2.Limits(max_connections=100, max_keepalive_connections=keepalive),
    )
    async with http:
        transport = streamable_http_client(url, http_client=http)
        async with Client(
            transport, mode=mode, message_handler=message_handler, cache=None
        ) as client:
            yield client


async def every_page(client: Client) -> list[list[str]]:
    """The tool names of each page of ``tools/list``, following the cursors."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        pages.append([tool.name for tool in page.tools])
        cursor = page.next_cursor
        if cursor is None:
            return pages


def modern_headers(token: str, method: str, name: str | None = None) -> dict[str, str]:
    """Headers of a raw 2026-07-28 request."""
    headers = {
        **ACCEPT,
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def messages(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON-RPC messages of an answer, JSON or SSE."""
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        return [
            json.loads(line[len("data:") :])
            for line in response.text.splitlines()
            if line.startswith("data:") and line[len("data:") :].strip()
        ]
    return [response.json()]


def answer(response: httpx.Response) -> dict[str, Any]:
    """The response message (the one with ``result`` or ``error``) of an answer."""
    found = [m for m in messages(response) if "result" in m or "error" in m]
    assert len(found) == 1, response.text
    return found[0]


def request(method: str, params: Mapping[str, Any] | None = None, id_: int = 1) -> dict[str, Any]:
    """A JSON-RPC request."""
    body: dict[str, Any] = {"jsonrpc": "2.0", "id": id_, "method": method}
    if params is not None:
        body["params"] = dict(params)
    return body
