"""Prometheus metrics of a process: its gRPC calls, and an HTTP endpoint that serves them.

Every process has one ``CollectorRegistry`` of its own (not the library's global one,
so that several servers in one test process keep their counts apart):
:class:`meshkit.server.PluginServer` makes it, counts every call it serves in it
(:class:`RpcMetrics`, through :class:`meshkit.interceptors.MeshInterceptor`), lends it to
its event bus, and serves it at ``http://<metrics address>/metrics``
(:class:`MetricsEndpoint`) when ``PLUGMESH_<PROCESS>_METRICS_ADDRESS`` is set.

:func:`process_registry` makes it with what every process exports besides its own series:
the standard ``process_*`` (CPU, memory, open files) and ``python_*`` (GC, version)
collectors of ``prometheus_client``, and ``plugmesh_build_info{version, process,
python}`` (always 1), the series a dashboard joins on to show versions.

The gRPC server's series (``grpc_server_started_total``, ``grpc_server_handled_total``,
``grpc_server_handling_seconds``) have the names and labels of the widely used gRPC
interceptors for Prometheus (``grpc_type``, ``grpc_service``, ``grpc_method``,
``grpc_code``): see :mod:`meshkit._grpc_series`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Gauge,
)
from prometheus_client.exposition import choose_encoder

from meshkit._grpc_series import LATENCY_BUCKETS, RpcMetrics, RpcSeries, grpc_type
from meshkit.version import package_version

__all__ = [
    "LATENCY_BUCKETS",
    "MetricsEndpoint",
    "RpcMetrics",
    "RpcSeries",
    "grpc_type",
    "process_registry",
]

log = logging.getLogger(__name__)


def process_registry(process: str) -> CollectorRegistry:
    """A new registry for the process ``process``, with the process and Python collectors
    and its ``plugmesh_build_info``."""
    registry = CollectorRegistry()
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    build = Gauge(
        "plugmesh_build_info",
        "The plugmesh build a process runs (always 1): its version, process and Python.",
        ["version", "process", "python"],
        registry=registry,
    )
    build.labels(package_version(), process, platform.python_version()).set(1)
    return registry


class MetricsEndpoint:
    """Serves a registry in the Prometheus text format at ``GET /metrics``.

    Plain HTTP/1.1, one response per connection, in the process's own event loop.

    Args:
        registry: What to serve.
        address: ``host:port`` to listen on; port 0 picks a free port.
    """

    def __init__(self, registry: CollectorRegistry, address: str) -> None:
        self._registry = registry
        self._listen = address
        self._server: asyncio.Server | None = None
        self._port = 0
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The port listened on; 0 before :meth:`start`."""
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` listened on, with the real port; empty before :meth:`start`."""
        if not self._port:
            return ""
        host, _, _ = self._listen.rpartition(":")
        return f"{host or '127.0.0.1'}:{self._port}"

    async def start(self) -> None:
        """Listen. Safe to call twice.

        Raises:
            OSError: The address cannot be listened on.
        """
        if self._server is not None:
            return
        host, _, port = self._listen.rpartition(":")
        self._server = await asyncio.start_server(
            self._serve, host.strip("[]") or "127.0.0.1", int(port), reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]
        log.info("serving metrics", extra={"metrics_address": self.address})

    async def stop(self) -> None:
        """Stop listening and close open connections. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for task in list(self._answering):
                task.cancel()
            await server.wait_closed()
            if self._answering:
                await asyncio.wait(list(self._answering))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._answering.add(task)
        try:
            async with asyncio.timeout(10):
                await self._answer(reader, writer)
        except (TimeoutError, ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass  # a client that went away or spoke garbage gets nothing more
        finally:
            self._answering.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, target, _ = (await reader.readuntil(b"\r\n")).decode("latin-1").split(" ", 2)
        accept = ""
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "accept":
                accept = value.strip()
        path = target.partition("?")[0]
        if method not in ("GET", "HEAD"):
            status, content_type, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
        elif path != "/metrics":
            status, content_type, body = "404 Not Found", "text/plain", b"see /metrics\n"
        else:
            encoder, content_type = choose_encoder(accept)
            status, body = "200 OK", encoder(self._registry)
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode("latin-1")
        writer.write(head if method == "HEAD" else head + body)
        await writer.drain()
