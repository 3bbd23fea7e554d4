"""The reference MCP server from npm, ``@modelcontextprotocol/server-everything``, as an
upstream over stdio and over Streamable HTTP (installed by ``make mcp-peers``)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.mcpfront.spec import HttpTransport, StdioTransport, Transport
from gateway.mcpfront.upstream import Upstream
from tests.gateway.mcp_upstreams.conftest import READY_TIMEOUT_SECONDS, StartUpstream, ready

PEERS = Path(__file__).resolve().parents[2] / "mcp_peers"
EVERYTHING = PEERS / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not EVERYTHING.is_dir(),
        reason="the npm MCP servers are installed by `make test` (npm ci in tests/mcp_peers)",
    ),
]


def free_port() -> int:
    # The server takes its port from PORT and does not say which one it got for 0.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def start_everything_http() -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """Starts server-everything serving Streamable HTTP, gives its endpoint's URL; stops it
    at the end."""
    processes: list[asyncio.subprocess.Process] = []

    async def start() -> str:
        assert NODE is not None
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            NODE,
            str(EVERYTHING / "index.js"),
            "streamableHttp",
            env={"PATH": os.environ.get("PATH", ""), "PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        processes.append(process)
        assert process.stderr is not None
        while b"listening on port" not in (
            line := await asyncio.wait_for(process.stderr.readline(), READY_TIMEOUT_SECONDS)
        ):
            assert line, "server-everything ended before it listened"
        return f"http://127.0.0.1:{port}/mcp"

    yield start
    for process in processes:
        process.terminate()
        await process.wait()


@pytest.fixture(params=["stdio", "http"])
async def everything(
    request: pytest.FixtureRequest,
    start_upstream: StartUpstream,
    start_everything_http: Callable[[], Awaitable[str]],
) -> Upstream:
    """server-everything as a READY upstream over each transport."""
    assert NODE is not None
    transport: Transport
    if request.param == "stdio":
        transport = StdioTransport(command=NODE, args=(str(EVERYTHING / "index.js"), "stdio"))
    else:
        transport = HttpTransport(await start_everything_http())
    return await ready(await start_upstream(transport, name="everything"))


async def test_its_tools_are_listed(everything: Upstream) -> None:
    names = {tool.name for tool in everything.tools}

    assert {"echo", "get-sum", "get-tiny-image", "trigger-long-running-operation"} <= names
    assert everything.skipped == ()


async def test_its_tools_are_called_with_their_results_whole(everything: Upstream) -> None:
    echoed = await everything.call("echo", {"message": "hi"})
    image = await everything.call("get-tiny-image", {})

    assert echoed["content"] == [{"type": "text", "text": "Echo: hi"}]
    assert echoed.get("isError", False) is False
    assert "image" in [block["type"] for block in image["content"]]
    assert all(block["data"] for block in image["content"] if block["type"] == "image")


async def test_its_progress_is_forwarded(everything: Upstream) -> None:
    reports: list[tuple[float, float | None]] = []

    async def progress(value: float, total: float | None, message: str | None) -> None:
        reports.append((value, total))

    result = await everything.call(
        "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progress=progress
    )

    assert "completed" in result["content"][0]["text"]
    assert reports == [(1, 3), (2, 3), (3, 3)]
