"""``tools/call`` on a 2026-07-28 Streamable HTTP upstream: one POST, no client session.

On the stateless revision a call is a self-contained POST: its headers say the protocol
version, the method and the tool (and mirror the arguments its schema marks with
``x-mcp-header``), its ``_meta`` says who the client is, and its answer is one JSON
body, or an event stream of progress notifications ending in the response. Nothing of
one call is shared with another but the HTTP connection pool. :class:`HttpCalls` makes
exactly that exchange on the connection's pooled HTTP client, which costs a fraction of
a round through the SDK's session, dispatcher and transport tasks (the gateway's hot
path, see ``bench/mcp.py``). Everything else on the connection (the discovery, the tool
list, ``subscriptions/listen``, pings) stays with the SDK's ``mcp.Client``.

Cancellation is closing the response stream, as the revision defines it: a cancelled
call's POST is closed. A JSON-RPC error in the answer, at any HTTP status, is the
server's error; an answer that is neither is a protocol error; a failed exchange
means the server is gone.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

import httpx2
from mcp.shared.inbound import (
    MCP_METHOD_HEADER,
    MCP_NAME_HEADER,
    MCP_PROTOCOL_VERSION_HEADER,
    encode_header_value,
    mcp_param_headers,
)
from mcp_types import CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, PROTOCOL_VERSION_META_KEY

from gateway.mcpfront.toolbox import Progress
from gateway.mcpfront.upstream_errors import UpstreamDied, UpstreamProtocolError, UpstreamRejected

__all__ = ["HeaderMap", "HttpCalls"]

#: A tool's ``x-mcp-header`` annotations: property path → header token.
HeaderMap = Mapping[tuple[str, ...], str]

_METHOD = "tools/call"
_PROGRESS = "notifications/progress"
_ACCEPT = "application/json, text/event-stream"
# One event of a stream: a whole result may be large, but not endless.
_MAX_EVENT_BYTES = 64 * 1024 * 1024
# The progress token of every call: one call per POST, so it names nothing else.
_TOKEN = "1"


class HttpCalls:
    """Calls the tools of one Streamable HTTP server that speaks 2026-07-28.

    Args:
        server: The server's name, for errors.
        http: The connection's HTTP client (its headers: the spec's).
        url: The server's MCP endpoint.
        protocol_version: The revision negotiated (a stateless one).
        client_info: How the gateway introduces itself (``Implementation`` as JSON).
    """

    def __init__(
        self,
        server: str,
        http: httpx2.AsyncClient,
        url: str,
        *,
        protocol_version: str,
        client_info: Mapping[str, Any],
    ) -> None:
        self._server = server
        self._http = http
        self._url = url
        self._version = protocol_version
        self._envelope = {
            PROTOCOL_VERSION_META_KEY: protocol_version,
            CLIENT_INFO_META_KEY: dict(client_info),
            CLIENT_CAPABILITIES_META_KEY: {},
        }
        self._ids = itertools.count(1)

    async def call(
        self,
        name: str,
        arguments: Mapping[str, Any] | None,
        *,
        meta: Mapping[str, Any] | None,
        progress: Progress | None,
        header_map: HeaderMap,
    ) -> dict[str, Any]:
        """Call ``name`` and return the ``result`` of its answer as sent.

        Raises:
            UpstreamRejected: The server answered a JSON-RPC error.
            UpstreamProtocolError: The answer is not a JSON-RPC response to the call.
            UpstreamDied: The exchange failed (the server is gone or hung up).
        """
        request_id = next(self._ids)
        params: dict[str, Any] = {"name": name, "arguments": dict(arguments or {})}
        params["_meta"] = {**(meta or {}), **self._envelope}
        if progress is not None:
            params["_meta"]["progressToken"] = _TOKEN
        headers = {
            "accept": _ACCEPT,
            "content-type": "application/json",
            MCP_PROTOCOL_VERSION_HEADER: self._version,
            MCP_METHOD_HEADER: _METHOD,
            MCP_NAME_HEADER: encode_header_value(name),
            **mcp_param_headers(header_map, params["arguments"]),
        }
        body = json.dumps(
            {"jsonrpc": "2.0", "id": request_id, "method": _METHOD, "params": params},
            separators=(",", ":"),
        ).encode()
        try:
            async with self._http.stream(
                "POST", self._url, content=body, headers=headers
            ) as response:
                kind = response.headers.get("content-type", "").lower()
                if kind.startswith("text/event-stream") and response.status_code < 300:
                    return await self._streamed(name, request_id, response, progress)
                return self._answered(name, request_id, response, await response.aread())
        except httpx2.TransportError as exc:
            raise UpstreamDied(
                f"{self._server}: the exchange of {name} failed: {type(exc).__name__}: {exc}",
                server=self._server,
                tool=name,
            ) from exc

    async def _streamed(
        self,
        name: str,
        request_id: int,
        response: httpx2.Response,
        progress: Progress | None,
    ) -> dict[str, Any]:
        async for event in httpx2.EventSource(response, max_event_size=_MAX_EVENT_BYTES):
            if event.event != "message" or not event.data:
                continue  # a priming event, a comment, another kind
            message = self._message(name, event.data)
            if message.get("method") == _PROGRESS:
                await self._progress(message, progress)
            elif "id" in message and ("result" in message or "error" in message):
                return self._result(name, request_id, message)
            # Other notifications (log messages) are not the caller's on this path.
        raise UpstreamDied(
            f"{self._server}: the stream of {name} ended without an answer",
            server=self._server,
            tool=name,
        )

    def _answered(
        self, name: str, request_id: int, response: httpx2.Response, body: bytes
    ) -> dict[str, Any]:
        try:
            message = self._message(name, body)
        except UpstreamProtocolError:
            if response.status_code < 300:
                raise
            raise UpstreamProtocolError(
                f"{self._server}: {name} was answered HTTP {response.status_code}",
                server=self._server,
                tool=name,
            ) from None
        if response.status_code >= 300 and "error" not in message:
            raise UpstreamProtocolError(
                f"{self._server}: {name} was answered HTTP {response.status_code}",
                server=self._server,
                tool=name,
            )
        return self._result(name, request_id, message)

    def _message(self, name: str, data: str | bytes) -> dict[str, Any]:
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            raise UpstreamProtocolError(
                f"{self._server}: {name} was answered what is not JSON-RPC: {_short(data)}",
                server=self._server,
                tool=name,
            )
        return message

    def _result(self, name: str, request_id: int, message: dict[str, Any]) -> dict[str, Any]:
        error = message.get("error")
        if isinstance(error, dict) and isinstance(error.get("code"), int):
            raise UpstreamRejected(
                server=self._server,
                tool=name,
                code=error["code"],
                error_message=str(error.get("message", "")),
                data=error.get("data"),
            )
        result = message.get("result")
        # An id of null answers a request the server could not read: an error, above.
        if message.get("id") != request_id or not isinstance(result, dict):
            raise UpstreamProtocolError(
                f"{self._server}: {name} was answered what is not a tools/call result",
                server=self._server,
                tool=name,
            )
        return result

    async def _progress(self, message: dict[str, Any], progress: Progress | None) -> None:
        params = message.get("params")
        if progress is None or not isinstance(params, dict):
            return
        done, total, text = params.get("progress"), params.get("total"), params.get("message")
        if not isinstance(done, int | float) or isinstance(done, bool):
            return
        await progress(
            float(done),
            float(total) if isinstance(total, int | float) else None,
            text if isinstance(text, str) else None,
        )


def _short(data: str | bytes, limit: int = 200) -> str:
    text = data if isinstance(data, str) else data.decode(errors="replace")
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")
