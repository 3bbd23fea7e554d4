"""The byte level of a connection to an upstream MCP server: a child process or HTTP.

:func:`open_transport` gives the SDK's ``mcp.Client`` the transport of a spec, watched
through a :class:`Link`: whether the connection ended (a child that exited, a stream
that closed), what the server wrote that is not JSON-RPC, and, for a child, the last
lines of its stderr. Every stderr line also goes to the gateway's log, tagged with the
server's name.

A child gets the environment the gateway passes down (:func:`~gateway.mcpfront.spec.
inherited_environment`) plus its spec's ``env``, and is stopped by the SDK when the
transport closes: stdin closed, then SIGTERM and SIGKILL to its process group.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp import StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage

from gateway.mcpfront.spec import HttpTransport, StdioTransport, UpstreamSpec

__all__ = ["Link", "open_transport"]

log = logging.getLogger(__name__)

_TAIL_LINES = 20
# Bytes of one stderr line; a longer one is dropped (with a note) rather than buffered.
_LINE_LIMIT = 64 * 1024
# How long a closing transport waits for the rest of a dead child's stderr.
_STDERR_DRAIN_SECONDS = 0.5
# HTTP: a connect that hangs is given up sooner than a response stream that is quiet.
_HTTP_TIMEOUT = httpx2.Timeout(30.0, connect=10.0, read=300.0)
# Calls are bounded by their server's concurrency limit, not by the pool.
_HTTP_LIMITS = httpx2.Limits(max_connections=None, max_keepalive_connections=64)

# The SDK's streams: (read of messages or transport errors, write of messages). Their
# protocol types live in a private module of the SDK.
_Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], Any]


class Link:
    """What the gateway sees of one connection below its MCP session.

    Made for each attempt to connect; the session's owner waits on :attr:`lost`.

    Attributes:
        server: The server's name, for log lines.
        lost: Set when the connection is gone (``lost_reason`` says how).
        suspect: Set when a caller saw the connection fail; the owner checks it.
        tools_changed: Set when the server said its tool list changed.
        http: The HTTP client of a Streamable HTTP connection (None for a child), which
            :class:`~gateway.mcpfront.http_calls.HttpCalls` shares.
    """

    def __init__(self, server: str) -> None:
        self.server = server
        self.lost = anyio.Event()
        self.lost_reason = ""
        self.suspect = anyio.Event()
        self.tools_changed = anyio.Event()
        self.http: httpx2.AsyncClient | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        self._garbage: collections.deque[str] = collections.deque(maxlen=3)

    def lose(self, reason: str) -> None:
        """Mark the connection gone; the first reason wins."""
        if not self.lost.is_set():
            self.lost_reason = reason
            self.lost.set()

    def note_stderr(self, line: str) -> None:
        self._stderr.append(line)

    def note_garbage(self, what: str) -> None:
        self._garbage.append(what)

    def context(self) -> str:
        """What the server wrote that explains a failure: its non-JSON output, its stderr."""
        parts = []
        if self._garbage:
            parts.append("it wrote what is not JSON-RPC: " + " | ".join(self._garbage))
        if self._stderr:
            parts.append("stderr: " + " | ".join(list(self._stderr)[-5:]))
        return "; ".join(parts)


@contextlib.asynccontextmanager
async def open_transport(
    spec: UpstreamSpec, link: Link, *, child_environment: Mapping[str, str]
) -> AsyncIterator[_Streams]:
    """The transport to ``spec``'s server, for ``mcp.Client``, watched through ``link``.

    Args:
        spec: The server.
        link: Told when the connection ends, and what the server wrote.
        child_environment: What a stdio child inherits, under the spec's ``env``.
    """
    transport = spec.transport
    if isinstance(transport, StdioTransport):
        streams = _stdio(transport, link, child_environment)
        ended = "the process closed its stdout (it ended?)"
    else:
        streams = _http(transport, link)
        ended = "the server closed the connection"
    async with streams as (read, write), _watched(read, link, ended) as watched:
        yield watched, write


@contextlib.asynccontextmanager
async def _stdio(
    transport: StdioTransport, link: Link, child_environment: Mapping[str, str]
) -> AsyncIterator[tuple[Any, Any]]:
    params = StdioServerParameters(
        command=transport.command,
        args=list(transport.args),
        env={**child_environment, **transport.env},
        cwd=transport.cwd,
    )
    read_fd, write_fd = os.pipe()
    errlog = os.fdopen(write_fd, "w")
    pump = _StderrPump(read_fd, link)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(pump.run)
        try:
            async with stdio_client(params, errlog=errlog) as streams:
                # The child has its own copy: the pipe ends when the child (and whatever
                # it started) is gone.
                errlog.close()
                yield streams
        finally:
            errlog.close()
            with anyio.move_on_after(_STDERR_DRAIN_SECONDS, shield=True):
                await pump.done.wait()
            tasks.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def _http(transport: HttpTransport, link: Link) -> AsyncIterator[tuple[Any, Any]]:
    async with (
        httpx2.AsyncClient(
            headers=dict(transport.headers), timeout=_HTTP_TIMEOUT, limits=_HTTP_LIMITS
        ) as http,
        streamable_http_client(transport.url, http_client=http) as streams,
    ):
        link.http = http
        try:
            yield streams
        finally:
            link.http = None


@contextlib.asynccontextmanager
async def _watched(
    read: Any, link: Link, ended: str
) -> AsyncIterator[MemoryObjectReceiveStream[SessionMessage | Exception]]:
    """``read`` relayed, so that its end (the server is gone: ``ended``) reaches ``link``."""
    sink: MemoryObjectSendStream[SessionMessage | Exception]
    sink, watched = anyio.create_memory_object_stream[SessionMessage | Exception](0)

    async def relay() -> None:
        reason = ended
        try:
            async with sink:
                async for item in read:
                    await sink.send(item)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the session is closing its side: nothing was lost
        except Exception as exc:  # the transport failed: that is the news to pass on
            reason = f"the transport failed: {exc!r}"
        link.lose(reason)

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(relay)
        try:
            yield watched
        finally:
            tasks.cancel_scope.cancel()
            watched.close()


class _StderrPump:
    """Reads a child's stderr line by line into the log and the link's tail."""

    def __init__(self, read_fd: int, link: Link) -> None:
        self._file = os.fdopen(read_fd, "rb", buffering=0)
        self._link = link
        self.done = anyio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_LINE_LIMIT)
        pipe = None
        try:
            pipe, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(reader), self._file
            )
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:
                    self._line(f"(a line longer than {_LINE_LIMIT} bytes was dropped)")
                    continue
                if not raw:
                    break
                self._line(raw.decode(errors="replace").rstrip("\r\n"))
        finally:
            if pipe is not None:
                pipe.close()
            else:
                self._file.close()
            self.done.set()

    def _line(self, line: str) -> None:
        self._link.note_stderr(line)
        server = self._link.server
        log.info("%s stderr: %s", server, line, extra={"mcp_server": server})
