"""``tools/call`` on a 2026-07-28 Streamable HTTP upstream as one POST (HttpCalls): what
goes on the wire, and every kind of answer, from a scripted HTTP server on a real socket."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
import uvicorn
from starlette.requests import Request
from starlette.responses import Response

from gateway.mcpfront.http_calls import HttpCalls
from gateway.mcpfront.upstream_errors import (
    UpstreamDied,
    UpstreamProtocolError,
    UpstreamRejected,
)
from tests.support.waiting import until

pytestmark = pytest.mark.timeout(30)

Script = Callable[[dict[str, Any]], Response]


@dataclass
class Scripted:
    """An HTTP server answering each POST with what ``script`` makes of its body."""

    script: Script = field(default=lambda body: Response(status_code=500))
    seen: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        body = json.loads(await request.body())
        self.seen.append((dict(request.headers), body))
        await self.script(body)(scope, receive, send)


@pytest.fixture
async def upstream() -> AsyncIterator[tuple[Scripted, HttpCalls]]:
    app = Scripted()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await until(lambda: server.started, what="the scripted server to serve")
    async with httpx2.AsyncClient(headers={"x-api-key": "k"}) as http:
        yield app, calls_to(http, port)
    server.should_exit = True
    await serving


def calls_to(http: httpx2.AsyncClient, port: int) -> HttpCalls:
    """The calls of server ``up`` at ``port``, as the gateway makes them."""
    return HttpCalls(
        "up",
        http,
        f"http://127.0.0.1:{port}/mcp",
        protocol_version="2026-07-28",
        client_info={"name": "plugmesh-gateway", "version": "0"},
    )


def result_of(body: dict[str, Any], result: dict[str, Any]) -> Response:
    return Response(
        json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result}),
        media_type="application/json",
    )


def stream_of(*messages: dict[str, Any] | str) -> Response:
    events = "".join(
        f"event: message\ndata: {m if isinstance(m, str) else json.dumps(m)}\n\n" for m in messages
    )
    return Response(events, media_type="text/event-stream")


async def test_a_call_is_one_post_with_the_revisions_headers_and_envelope(
    upstream: tuple[Scripted, HttpCalls],
) -> None:
    app, calls = upstream
    app.script = lambda body: result_of(body, {"content": [], "isError": False})
    header_map: dict[tuple[str, ...], str] = {("region",): "Region"}

    result = await calls.call(
        "look up",
        {"region": "eu-west", "q": 1},
        meta={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
        progress=None,
        header_map=header_map,
    )

    assert result == {"content": [], "isError": False}
    [(headers, body)] = app.seen
    assert headers["mcp-protocol-version"] == "2026-07-28"
    assert headers["mcp-method"] == "tools/call"
    assert headers["mcp-name"] != ""  # the name, encoded as the revision says
    assert headers["mcp-param-region"] == "eu-west"
    assert headers["x-api-key"] == "k"  # the server's own headers from its spec
    assert body["method"] == "tools/call"
    assert body["params"]["name"] == "look up"
    assert body["params"]["arguments"] == {"region": "eu-west", "q": 1}
    meta = body["params"]["_meta"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "plugmesh-gateway"
    assert meta["traceparent"].startswith("00-111")
    assert "progressToken" not in meta  # nobody asked for progress


async def test_progress_in_an_event_stream_reaches_the_caller_before_the_result(
    upstream: tuple[Scripted, HttpCalls],
) -> None:
    app, calls = upstream
    app.script = lambda body: stream_of(
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}},
        {
            "jsonrpc": "2.0",
            "method": "notifications/progress",
            "params": {
                "progressToken": body["params"]["_meta"]["progressToken"],
                "progress": 1,
                "total": 2,
                "message": "half",
            },
        },
        {"jsonrpc": "2.0", "id": body["id"], "result": {"content": [], "structuredContent": {}}},
    )
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    result = await calls.call("slow", {}, meta=None, progress=progress, header_map={})

    assert result == {"content": [], "structuredContent": {}}
    assert reports == [(1.0, 2.0, "half")]


@pytest.mark.parametrize("status", [200, 400])
async def test_a_json_rpc_error_is_the_servers_answer_at_any_status(
    upstream: tuple[Scripted, HttpCalls], status: int
) -> None:
    app, calls = upstream
    error = {"code": -32602, "message": "bad region", "data": {"field": "region"}}
    app.script = lambda body: Response(
        json.dumps({"jsonrpc": "2.0", "id": body["id"], "error": error}),
        status_code=status,
        media_type="application/json",
    )

    with pytest.raises(UpstreamRejected) as caught:
        await calls.call("x", {}, meta=None, progress=None, header_map={})

    assert (caught.value.code, caught.value.error_message) == (-32602, "bad region")
    assert caught.value.data == {"field": "region"}


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda body: Response("oops", status_code=500), id="http-500-text"),
        pytest.param(
            lambda body: Response("not json", media_type="application/json"), id="garbage"
        ),
        pytest.param(
            lambda body: Response(
                json.dumps({"jsonrpc": "2.0", "id": 999, "result": {"content": []}}),
                media_type="application/json",
            ),
            id="another-id",
        ),
        pytest.param(
            lambda body: Response(
                json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": [1]}),
                media_type="application/json",
            ),
            id="result-not-an-object",
        ),
        pytest.param(lambda body: stream_of("{not json"), id="garbage-in-a-stream"),
    ],
)
async def test_an_answer_that_is_not_a_result_is_a_protocol_error(
    upstream: tuple[Scripted, HttpCalls], answer: Script
) -> None:
    app, calls = upstream
    app.script = answer
    with pytest.raises(UpstreamProtocolError, match="up: x was answered"):
        await calls.call("x", {}, meta=None, progress=None, header_map={})


async def test_a_stream_that_ends_without_an_answer_means_the_server_hung_up(
    upstream: tuple[Scripted, HttpCalls],
) -> None:
    app, calls = upstream
    app.script = lambda body: stream_of(
        {"jsonrpc": "2.0", "method": "notifications/message", "params": {}}
    )
    with pytest.raises(UpstreamDied, match="ended without an answer"):
        await calls.call("x", {}, meta=None, progress=None, header_map={})


async def test_a_server_that_is_gone_fails_the_call_as_died() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there
    async with httpx2.AsyncClient() as http:
        calls = calls_to(http, port)
        with pytest.raises(UpstreamDied, match="the exchange of x failed"):
            await calls.call("x", {}, meta=None, progress=None, header_map={})
