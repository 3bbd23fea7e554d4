"""Serving the app: uvicorn (httptools parser) inside the gateway's own event loop.

The gateway owns the loop, its signals and its shutdown order, so uvicorn is embedded
rather than run: :class:`HttpServer` binds the listen socket itself (port 0 picks a free
port and :attr:`HttpServer.address` reports it; a taken port fails at once, with no
``SO_REUSEPORT`` sharing), hands it to ``uvicorn.Server.serve`` in a task, and stops it
with a grace period for requests in flight. ``bench/http_servers.py`` has the
measurement behind the choice of uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
from collections.abc import Awaitable, Callable, Generator

import uvicorn

from gateway.http.asgi import Receive, Scope, Send

__all__ = ["AddressInUseError", "AsgiApp", "HttpServer", "parse_address"]

log = logging.getLogger(__name__)

AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class AddressInUseError(OSError):
    """The HTTP listen address cannot be bound."""


class _EmbeddedServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The gateway process handles SIGTERM/SIGINT and stops this server itself.
        yield


def parse_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (``[::1]:8080`` for IPv6) into host and port.

    Raises:
        ValueError: the address has no numeric port.
    """
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]") or "0.0.0.0", int(port)


class HttpServer:
    """The HTTP listener of the gateway, with an explicit, idempotent lifecycle.

    Args:
        app: The ASGI app (:func:`gateway.http.build_app`).
        address: ``host:port`` to listen on; port 0 picks a free port.
        shutdown_grace_seconds: How long requests in flight may finish on :meth:`stop`.
    """

    def __init__(self, app: AsgiApp, address: str, *, shutdown_grace_seconds: float = 5.0) -> None:
        self._app = app
        self._listen = address
        self._grace = shutdown_grace_seconds
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._address = ""
        self._stopped = False

    @property
    def address(self) -> str:
        """``host:port`` with the real port; empty before :meth:`start`."""
        return self._address

    @property
    def port(self) -> int:
        """The real port; 0 before :meth:`start`."""
        return int(self._address.rpartition(":")[2]) if self._address else 0

    async def start(self) -> None:
        """Bind and serve; returns once accepting connections. Safe to call twice.

        Raises:
            AddressInUseError: the address cannot be bound.
        """
        if self._server is not None or self._stopped:
            return
        sock = _bind(self._listen)
        host, port = sock.getsockname()[:2]
        config = uvicorn.Config(
            self._app,
            http="httptools",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(math.ceil(self._grace), 1),
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="http-server")
        while not server.started:
            if self._task.done():
                await self._task  # raises what made it fail
                raise RuntimeError("the HTTP server stopped while starting")
            await asyncio.sleep(0.005)
        self._address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        log.info("HTTP serving", extra={"address": self._address})

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish within the grace, close.

        Safe to call twice.
        """
        self._stopped = True
        server, task = self._server, self._task
        self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task


def _bind(address: str) -> socket.socket:
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR only (rebinding right after a restart), never SO_REUSEPORT: a
        # second gateway on a taken port must fail instead of sharing its traffic.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: no Nagle delay between headers and body.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        raise AddressInUseError(f"the gateway cannot listen for HTTP on {address}: {exc}") from exc
    sock.setblocking(False)
    return sock
