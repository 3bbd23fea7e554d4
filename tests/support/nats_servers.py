"""NATS servers for tests of connecting: a real one whose connections can be counted, and
a fake one that greets a client and then stalls."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType

import httpx
import nats

from launcher.natsd import NatsServer, NatsServerStatus
from tests.support.waiting import until

__all__ = ["MonitoredNats", "StalledNats", "free_port", "start_behind_stalled_nats"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MonitoredNats:
    """A nats-server with its monitoring endpoint on, to count its connections by name;
    stopped and started again on the same port.

    Args:
        tmp_path: Where its store and log go.
        port: Its client port; a free one when 0.
    """

    def __init__(self, tmp_path: Path, *, port: int = 0) -> None:
        self.monitor = free_port()
        self.store = tmp_path / "jetstream"
        self.log = tmp_path / "nats.log"
        self.server = self._server(port=port)

    @property
    def url(self) -> str:
        """Where clients connect."""
        return self.server.url

    def _server(self, *, port: int) -> NatsServer:
        extra = ("-m", str(self.monitor))
        return NatsServer(self.store, port=port, log_path=self.log, extra_args=extra)

    async def start(self) -> None:
        """Start (again, on the same port once it has run)."""
        if self.server.status is not NatsServerStatus.NEW:
            self.server = self._server(port=self.server.port)
        await self.server.start()

    async def stop(self) -> None:
        """Stop. Safe to call twice."""
        await self.server.stop()

    async def restart(self) -> None:
        """Stop, then start again on the same port."""
        await self.stop()
        await self.start()

    async def publish(self, subject: str, data: bytes) -> None:
        """Publish one message on core NATS, on a connection of its own."""
        nc = await nats.connect(self.url)
        try:
            await nc.publish(subject, data)
            await nc.flush()
        finally:
            await nc.close()

    async def connections(self, name: str) -> int:
        """How many open client connections are named ``name`` (``/connz``)."""
        async with httpx.AsyncClient() as http:
            answer = await http.get(f"http://127.0.0.1:{self.monitor}/connz")
        return sum(1 for c in answer.json().get("connections") or () if c.get("name") == name)


class StalledNats:
    """A fake NATS on ``port`` that greets each client and (with ``handshake``) answers
    the PING of its handshake, then answers nothing more: a server that hangs right after
    accepting.

    ``open`` counts the client connections it holds; one the client closed is gone.
    """

    def __init__(self, port: int, *, handshake: bool = True) -> None:
        self.port = port
        self.accepted = 0
        self.open = 0
        self._handshake = handshake
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> StalledNats:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in self._writers:
                writer.close()  # its handler then reads the end and returns
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        self.accepted += 1
        self.open += 1
        info = {"server_id": "stalled", "version": "2.12.0", "proto": 1, "max_payload": 1 << 20}
        try:
            writer.write(f"INFO {json.dumps(info)}\r\n".encode())
            await writer.drain()
            answered = not self._handshake
            while line := await reader.readline():
                if line.startswith(b"PING") and not answered:
                    writer.write(b"PONG\r\n")
                    await writer.drain()
                    answered = True
        except ConnectionError:
            pass
        finally:
            self.open -= 1
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()


async def start_behind_stalled_nats(
    port: int, start: Callable[[], Awaitable[None]], *, failed: Callable[[], bool]
) -> None:
    """Run ``start`` while a :class:`StalledNats` answers on ``port``, and wait until
    ``failed()`` says the first try at NATS has failed (the subscription's flush unanswered);
    the fake is gone on return, the port free for a real server."""
    async with StalledNats(port):
        await start()
        await until(failed, timeout_seconds=30, what="the first try at NATS to fail")
