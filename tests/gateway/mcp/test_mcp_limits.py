"""The MCP front at its limits, through a real gateway to a real upstream (our test MCP
server over stdio, added with the admin API): a thousand calls at once, arguments around
the body limit, arguments of the wrong type. Every request gets an answer, each a result
or a JSON-RPC error, never a 500; and the gateway serves on."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from mcp import MCPError

from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import (
    ACCEPT,
    ERAS,
    MODERN_META,
    answer,
    connected,
    modern_headers,
)
from tests.gateway.mcp.clients import request as json_rpc
from tests.gateway.mcp.servers_api import READY, add_server, our_upstream, reached, servers_admin

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

RAW_SERVER = "tests.gateway.mcp_upstreams.raw_upstream"
EVERYTHING = (
    Path(__file__).resolve().parents[2]
    / "mcp_peers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
)
NODE = shutil.which("node")
HAS_EVERYTHING = NODE is not None and EVERYTHING.is_file()
NO_EVERYTHING = "server-everything (and node) are installed by `make mcp-peers`"
#: The MCP body limit of the gateway (``PLUGMESH_GATEWAY_MCP_BODY_LIMIT_BYTES``'s default).
BODY_LIMIT = 4 * 1024 * 1024
CALLS = 1000


class Served:
    """The gateway's ``/mcp``, serving our test server as ``up``, our hand-written one as
    ``raw`` and server-everything (npm, when installed) as ``everything``, and an admin's
    token."""

    def __init__(self, mesh: Mesh, token: str) -> None:
        self.url = f"http://{mesh.gateway.http_address}/mcp"
        self.token = token


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def served(auth_mesh: Mesh) -> AsyncIterator[Served]:
    token = await servers_admin(auth_mesh, "limits-admin")
    await add_server(auth_mesh, token, our_upstream("up"))
    await add_server(auth_mesh, token, our_upstream("raw", "-m", RAW_SERVER))
    servers = ["up", "raw"]
    if HAS_EVERYTHING:
        assert NODE is not None
        args = [str(EVERYTHING), "stdio"]
        await add_server(
            auth_mesh, token, {"name": "everything", "stdio": {"command": NODE, "args": args}}
        )
        servers.append("everything")
    for name in servers:
        await reached(auth_mesh, token, name, READY)
    yield Served(auth_mesh, token)


def call_body(name: str, arguments: Any, id_: int = 1) -> dict[str, Any]:
    """A raw 2026-07-28 ``tools/call``."""
    params = {"name": name, "arguments": arguments, "_meta": MODERN_META}
    return json_rpc("tools/call", params, id_)


async def call(
    http: httpx.AsyncClient, served: Served, name: str, arguments: Any, id_: int = 1
) -> httpx.Response:
    return await http.post(
        served.url,
        json=call_body(name, arguments, id_),
        headers=modern_headers(served.token, "tools/call", name),
    )


def outcome(response: httpx.Response) -> str:
    """``result``, ``error <code>``, or what else came back (``HTTP <status>: …``)."""
    try:
        message = answer(response)
    except (AssertionError, ValueError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if "result" in message:
        return "result"
    return f"error {message['error']['code']}"


async def echoes(served: Served, text: str) -> str:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await call(http, served, "up__echo", {"text": text})
    assert response.status_code == 200, response.text
    content: str = answer(response)["result"]["content"][0]["text"]
    return content


# -- a thousand calls at once -----------------------------------------------------------


async def test_a_thousand_concurrent_calls_are_each_answered_and_the_gateway_serves_on(
    served: Served,
) -> None:
    limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=200, limits=limits) as http:

        async def one(n: int) -> str:
            try:
                response = await call(http, served, "up__echo", {"text": f"n{n}"}, id_=n)
            except httpx.HTTPError as exc:
                return f"{type(exc).__name__}: {exc}"
            found = outcome(response)
            if found == "result":
                text = answer(response)["result"]["content"][0]["text"]
                return "result" if text == f"echo:n{n}" else f"wrong result {text!r}"
            return found

        started = time.monotonic()
        outcomes = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(CALLS))), 240)
        took = time.monotonic() - started

    tally = Counter(outcomes)
    print(f"\n{CALLS} concurrent tools/call through /mcp: {dict(tally)} in {took:.1f} s")
    answered = {kind: n for kind, n in tally.items() if kind == "result" or kind[:6] == "error "}
    assert tally == answered  # no 500, no hang, no broken answer
    assert tally["result"] > 0
    assert await echoes(served, "after") == "echo:after"


# -- the body limit ---------------------------------------------------------------------


def _chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), size):
            yield body[start : start + size]

    return chunks()


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
async def test_a_10_mb_argument_is_a_413_with_a_json_rpc_error_and_the_next_call_passes(
    served: Served, declared: bool, era: str
) -> None:
    if era == "2026-07-28":
        body = call_body("up__echo", {"text": "x" * 10_000_000})
        headers = modern_headers(served.token, "tools/call", "up__echo")
    else:
        params = {"name": "up__echo", "arguments": {"text": "x" * 10_000_000}}
        body = json_rpc("tools/call", params)
        headers = {**ACCEPT, "Authorization": f"Bearer {served.token}"}
    encoded = json.dumps(body).encode()
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            served.url, content=encoded if declared else _chunks(encoded), headers=headers
        )

    assert response.status_code == 413, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    error = response.json()["error"]
    assert error["code"] == -32600
    assert error["data"] == {"limit_bytes": BODY_LIMIT}
    assert await echoes(served, "next") == "echo:next"


async def test_an_argument_just_under_the_body_limit_passes_through_whole(served: Served) -> None:
    envelope = len(json.dumps(call_body("up__echo", {"text": ""})))
    text = "y" * (BODY_LIMIT - envelope - 3) + "end"
    body = json.dumps(call_body("up__echo", {"text": text})).encode()
    assert BODY_LIMIT - 10 < len(body) <= BODY_LIMIT
    async with httpx.AsyncClient(timeout=60) as http:
        response = await http.post(
            served.url, content=body, headers=modern_headers(served.token, "tools/call", "up__echo")
        )

    assert response.status_code == 200, response.text[:500]
    result = answer(response)["result"]
    assert result["content"] == [{"type": "text", "text": f"echo:{text}"}]
    assert result["structuredContent"] == {"result": f"echo:{text}"}


# -- arguments of the wrong type --------------------------------------------------------

#: (server, tool, arguments of the wrong type, what the upstream's own validation says)
WRONG_TYPES = [
    pytest.param(
        "up", "add", {"a": "two", "b": 3}, "Input should be a valid integer", id="python-sdk"
    ),
    pytest.param(
        "everything",
        "get-sum",
        {"a": "two", "b": 3},
        "expected number",
        id="server-everything",
        marks=pytest.mark.skipif(not HAS_EVERYTHING, reason=NO_EVERYTHING),
    ),
]


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize(("server", "tool", "arguments", "said"), WRONG_TYPES)
async def test_a_wrong_argument_type_is_the_upstreams_own_tool_error(
    served: Served, mode: str, server: str, tool: str, arguments: dict[str, Any], said: str
) -> None:
    async with connected(served.url, served.token, mode) as client:
        result = await client.call_tool(f"{server}__{tool}", arguments)

    assert result.is_error is True
    assert said in result.content[0].text  # type: ignore[union-attr]


async def test_a_wrong_argument_type_is_answered_200_with_the_tool_error_on_the_wire(
    served: Served,
) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await call(http, served, "up__add", {"a": "two", "b": 3})

    assert response.status_code == 200, response.text
    result = answer(response)["result"]
    assert result["isError"] is True
    assert "Input should be a valid integer" in result["content"][0]["text"]
    assert "structuredContent" not in result


@pytest.mark.parametrize("mode", ERAS)
async def test_an_upstreams_json_rpc_refusal_reaches_the_caller_as_it_was_sent(
    served: Served, mode: str
) -> None:
    """The other way an upstream may refuse arguments: a JSON-RPC error (our hand-written
    server's ``rejected`` answers ``-32602`` with data)."""
    async with connected(served.url, served.token, mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("raw__rejected", {"anything": 1})

    assert (refused.value.code, str(refused.value)) == (-32602, "no thanks")
    assert refused.value.error.data == {"why": "test"}
