"""A loopback HTTP/1.1 proxy that adds a bearer token to every request.

The conformance suite's server mode has no option to send a header, and the gateway
answers ``/mcp`` only with a credential: the suite talks to this proxy, which passes each
request on with ``Authorization: Bearer <token>`` (replacing any the client sent) and
everything else as it came, ``Host`` and ``Origin`` included, so the gateway's own
DNS-rebinding checks see what the suite sent. Answers pass back byte for byte (SSE
streams included); when either side closes, so does the other.

Request bodies must carry a ``Content-Length`` (the suite's do); a chunked one is
answered 501.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

from meshkit.tasks import cancel_and_wait

__all__ = ["BearerProxy"]

_NOT_IMPLEMENTED = b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class BearerProxy:
    """Listens on a free loopback port; ``async with`` starts and stops it.

    Args:
        backend: ``host:port`` to pass requests to.
        token: The bearer token to add; never logged.
    """

    def __init__(self, backend: str, token: str) -> None:
        self._backend = backend
        self._authorization = f"Authorization: Bearer {token}\r\n".encode()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    def __repr__(self) -> str:
        return f"BearerProxy(backend={self._backend!r})"

    async def __aenter__(self) -> BearerProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
        await cancel_and_wait(*self._tasks)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        host, _, port = self._backend.rpartition(":")
        try:
            backend_reader, backend_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            self._tasks.discard(task)
            return
        try:
            pumps = [
                asyncio.create_task(self._requests(reader, backend_writer, writer)),
                asyncio.create_task(_answers(backend_reader, writer)),
            ]
            # Either side closing ends both: a client's abort reaches the gateway.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait(*pumps)
        finally:
            for side in (backend_writer, writer):
                side.close()
            self._tasks.discard(task)

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        backend: asyncio.StreamWriter,
        client: asyncio.StreamWriter,
    ) -> None:
        """Pass on each request of the connection, its head with the token."""
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                start, *lines = head[:-4].split(b"\r\n")
                names = [line.partition(b":")[0].strip().lower() for line in lines]
                if b"transfer-encoding" in names:
                    client.write(_NOT_IMPLEMENTED)
                    await client.drain()
                    return
                length = 0
                kept = []
                for name, line in zip(names, lines, strict=True):
                    if name == b"content-length":
                        length = int(line.partition(b":")[2])
                    if name != b"authorization":
                        kept.append(line + b"\r\n")
                backend.write(b"".join([start, b"\r\n", *kept, self._authorization, b"\r\n"]))
                if length:
                    backend.write(await reader.readexactly(length))
                await backend.drain()


async def _answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
