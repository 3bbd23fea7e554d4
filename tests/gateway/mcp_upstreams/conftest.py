"""Fixtures: our test MCP server (``upstream.py``) over stdio and over Streamable HTTP,
and upstreams of the gateway connected to it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.mcpfront.connection import ConnectionSettings
from gateway.mcpfront.spec import HttpTransport, StdioTransport, Transport, UpstreamSpec
from gateway.mcpfront.upstream import State, Upstream
from meshkit.registration import Backoff
from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[3]
SERVER = "tests.gateway.mcp_upstreams.upstream"

#: Quick retries, a connect bound that a loaded machine still meets.
SETTINGS = ConnectionSettings(
    connect_timeout_seconds=20.0,
    backoff=Backoff(initial_seconds=0.05, maximum_seconds=0.5),
)
READY_TIMEOUT_SECONDS = 30.0


def stdio_transport(*options: str, env: dict[str, str] | None = None) -> StdioTransport:
    """Our test server as a child process, with ``options`` (``--legacy`` and the like)."""
    return StdioTransport(
        command=sys.executable, args=("-m", SERVER, "stdio", *options), env=env or {}, cwd=str(ROOT)
    )


class HttpServer:
    """Our test server (or another ``module`` run the same way) in its own process on a
    free port, serving Streamable HTTP."""

    def __init__(self, *options: str, module: str = SERVER) -> None:
        self._options = options
        self._module = module
        self.port = 0
        self.process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        """Start it (on the port it had before, if any) and wait until it listens."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            self._module,
            "http",
            "--port",
            str(self.port),
            *self._options,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), READY_TIMEOUT_SECONDS)
        assert line.startswith(b"port "), line
        self.port = int(line.split()[1])

    async def exited(self) -> int:
        assert self.process is not None
        return await asyncio.wait_for(self.process.wait(), READY_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.exited()


StartHttp = Callable[..., Awaitable[HttpServer]]


@pytest.fixture
async def start_http() -> AsyncIterator[StartHttp]:
    """Factory for :class:`HttpServer` processes, stopped at the end."""
    servers: list[HttpServer] = []

    async def start(*options: str) -> HttpServer:
        server = HttpServer(*options)
        servers.append(server)
        await server.start()
        return server

    yield start
    for server in servers:
        await server.stop()


StartUpstream = Callable[..., Awaitable[Upstream]]


@pytest.fixture
async def start_upstream() -> AsyncIterator[StartUpstream]:
    """Factory for started :class:`Upstream`s (not waited for), closed at the end."""
    upstreams: list[Upstream] = []

    async def start(
        transport: Transport,
        *,
        settings: ConnectionSettings = SETTINGS,
        on_change: Callable[[Upstream], None] | None = None,
        name: str = "t",
        **fields: Any,
    ) -> Upstream:
        spec = UpstreamSpec(name=name, transport=transport, **fields)
        upstream = Upstream(spec, settings=settings, on_change=on_change)
        upstreams.append(upstream)
        await upstream.start()
        return upstream

    yield start
    for upstream in upstreams:
        await upstream.close()


async def ready(upstream: Upstream) -> Upstream:
    """Wait until ``upstream`` is READY."""
    await until(
        lambda: upstream.state is State.READY,
        timeout_seconds=READY_TIMEOUT_SECONDS,
        what=f"{upstream.name} ready (last error: {upstream.last_error!r})",
    )
    return upstream


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs any more (gone, or a zombie nobody reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status


ERAS = {
    "modern": (),
    "legacy": ("--legacy",),
}


@pytest.fixture(params=["stdio-modern", "stdio-legacy", "http-modern", "http-legacy"])
async def served(
    request: pytest.FixtureRequest, start_http: StartHttp, start_upstream: StartUpstream
) -> Upstream:
    """Our test server as a READY upstream, over each transport and in each era."""
    kind, era = request.param.split("-")
    options = (*ERAS[era], "--page-size", "3")
    transport: Transport
    if kind == "stdio":
        transport = stdio_transport(*options)
    else:
        transport = HttpTransport((await start_http(*options)).url)
    return await ready(await start_upstream(transport))
