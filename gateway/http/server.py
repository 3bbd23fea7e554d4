"""Serving the app: uvicorn (httptools parser) inside the gateway's own event loop.

The gateway owns the loop, its signals and its shutdown order, so uvicorn is embedded
rather than run: :class:`HttpServer` binds the listen socket itself (port 0 picks a free
port and :attr:`HttpServer.address` reports it; a taken port fails at once, with no
``SO_REUSEPORT`` sharing), hands it to ``uvicorn.Server.serve`` in a task, and stops it
with a grace period for requests in flight. ``bench/http_servers.py`` has the
measurement behind the choice of uvicorn.

Each connection writes through a :class:`CoalescingTransport`, so that a response's head
and body leave in one ``send`` (``bench/gateway.py``: a fifth less CPU per request on the
HTTP side).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import socket
import ssl
from collections.abc import Awaitable, Callable, Generator, Iterable
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.front_door import FrontDoorTls
from gateway.http.asgi import Receive, Scope, Send
from meshkit.server import AddressInUseError
from meshkit.tasks import cancel_and_wait

__all__ = ["AsgiApp", "CoalescingTransport", "HttpServer", "parse_address"]

log = logging.getLogger(__name__)

AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class CoalescingTransport(asyncio.Transport):
    """A transport that sends what is written during one event-loop step in one write.

    uvicorn writes a response's status line and headers, then its body, with one
    ``write`` each: two ``send`` system calls and, with ``TCP_NODELAY``, two TCP
    segments per response. Held back until the end of the step, they go out as one.
    Everything else is the wrapped transport's; closing sends what is held first.
    """

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._flush_scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._held.append(bytes(data))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, list_of_data: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in list_of_data:
            self.write(data)

    def flush(self) -> None:
        """Send what is held now."""
        self._flush_scheduled = False
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held.clear()
        self._transport.abort()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(len(data) for data in self._held)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class _CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol writing through a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(CoalescingTransport(transport, asyncio.get_running_loop()))


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
        tls: The front door's certificate; plaintext without one. A renewed one (its
            files rewritten) is served from the next handshake after the next check.
        certificate_check_seconds: How often the certificate's files are checked.
    """

    def __init__(
        self,
        app: AsgiApp,
        address: str,
        *,
        shutdown_grace_seconds: float = 5.0,
        tls: FrontDoorTls | None = None,
        certificate_check_seconds: float = 30.0,
    ) -> None:
        self._app = app
        self._tls = tls or FrontDoorTls()
        self._check_every = certificate_check_seconds
        self._renewals: asyncio.Task[None] | None = None
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
            http=_CoalescingHttpToolsProtocol,
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=max(math.ceil(self._grace), 1),
            ssl_certfile=self._tls.cert_file,
            ssl_keyfile=self._tls.key_file,
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
        if server.config.ssl is not None:
            self._renewals = asyncio.create_task(
                self._follow_certificate(server.config.ssl), name="http-certificate"
            )
        log.info("HTTP serving", extra={"address": self._address})

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish within the grace, close.

        Safe to call twice.
        """
        self._stopped = True
        await cancel_and_wait(self._renewals)
        server, task = self._server, self._task
        self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        await task

    async def _follow_certificate(self, context: ssl.SSLContext) -> None:
        """Load the certificate into the serving context again when its files change:
        new handshakes get it, open connections keep theirs."""
        cert, key = self._tls.cert_file, self._tls.key_file
        assert cert is not None
        assert key is not None
        seen = _stamps(cert, key)
        while True:
            await asyncio.sleep(self._check_every)
            stamps = _stamps(cert, key)
            if stamps == seen:
                continue
            try:
                # On a scratch context first: a key that does not match the certificate
                # (read between their rewrites) must not reach the serving one.
                ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key)
                context.load_cert_chain(cert, key)
            except (OSError, ssl.SSLError):
                continue  # retried at the next check
            seen = stamps
            log.info("serving a renewed certificate", extra={"cert_file": str(cert)})


def _stamps(*paths: Path) -> tuple[int, ...]:
    try:
        return tuple(path.stat().st_mtime_ns for path in paths)
    except OSError:
        return ()


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
