"""The HTTP server sends what one event-loop step writes in one write: a response's head
and body leave together."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from gateway.http import GatewayApp, HttpServer, HttpSettings, build_app
from gateway.http.server import CoalescingTransport


class RecordingTransport(asyncio.Transport):
    """Records writes; closing and aborting only set flags."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def get_write_buffer_size(self) -> int:
        return 0


def coalescing() -> tuple[CoalescingTransport, RecordingTransport]:
    inner = RecordingTransport()
    return CoalescingTransport(inner, asyncio.get_running_loop()), inner


async def test_writes_of_one_step_go_out_as_one_at_its_end() -> None:
    transport, inner = coalescing()

    transport.write(b"HTTP/1.1 200 OK\r\n\r\n")
    transport.writelines([b"{", bytearray(b"}")])
    held = list(inner.writes)
    await asyncio.sleep(0)

    assert held == []
    assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\n{}"]


async def test_each_step_is_sent_on_its_own() -> None:
    transport, inner = coalescing()

    transport.write(b"first")
    await asyncio.sleep(0)
    transport.write(b"second")
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert inner.writes == [b"first", b"second"]


async def test_close_sends_what_is_held_first() -> None:
    transport, inner = coalescing()

    transport.write(b"last words")
    transport.close()
    await asyncio.sleep(0)

    assert inner.writes == [b"last words"]
    assert inner.closed
    assert transport.is_closing()


async def test_abort_drops_what_is_held() -> None:
    transport, inner = coalescing()

    transport.write(b"never sent")
    assert transport.get_write_buffer_size() == len(b"never sent")
    transport.abort()
    await asyncio.sleep(0)

    assert inner.writes == []
    assert inner.aborted
    assert transport.get_write_buffer_size() == 0


async def test_nothing_is_written_once_the_connection_closed() -> None:
    transport, inner = coalescing()

    transport.write(b"too late")
    inner.closed = True  # the peer went away within the step
    await asyncio.sleep(0)

    assert inner.writes == []


class _Catalog:
    ready = True

    class snapshot:  # noqa: N801  # the attribute the app reads
        schema_generation = 0

        @staticmethod
        def methods() -> tuple[()]:
            return ()

    def subscribe(self, subscriber: object) -> object:
        return lambda: None


async def test_a_response_arrives_in_one_piece() -> None:
    app: GatewayApp[Any] = build_app(_Catalog(), None, HttpSettings())  # type: ignore[arg-type]  # no upstream call
    server = HttpServer(app, "127.0.0.1:0", shutdown_grace_seconds=0.2)
    await server.start()
    loop = asyncio.get_running_loop()
    client = socket.socket()
    client.setblocking(False)
    try:
        await loop.sock_connect(client, ("127.0.0.1", server.port))
        await loop.sock_sendall(client, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        async with asyncio.timeout(5):
            first = await loop.sock_recv(client, 65536)
    finally:
        client.close()
        await server.stop()
        app.close()

    head, _, body = first.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert body == b'{"status":"SERVING"}'
