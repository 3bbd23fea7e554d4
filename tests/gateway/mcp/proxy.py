"""A round-robin TCP proxy: several gateway replicas behind one address.

Each connection goes to the next backend in turn, and its bytes pass both ways
untouched. When either side closes, the other is closed too, so a client that gives up
on a request reaches the gateway (a 2026-07-28 cancellation is a closed request).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

from meshkit.tasks import cancel_and_wait

__all__ = ["RoundRobinProxy"]


class RoundRobinProxy:
    """Listens on a free loopback port; ``async with`` starts and stops it.

    Args:
        backends: ``host:port`` of each replica.
    """

    def __init__(self, backends: Sequence[str]) -> None:
        self._backends = list(backends)
        self._next = itertools.cycle(range(len(self._backends)))
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        #: How many connections went to each backend.
        self.connections: Counter[str] = Counter()

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``."""
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aenter__(self) -> RoundRobinProxy:
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
        backend = self._backends[next(self._next)]
        self.connections[backend] += 1
        host, _, port = backend.rpartition(":")
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            return
        try:
            pumps = [
                asyncio.create_task(_pump(reader, upstream_writer)),
                asyncio.create_task(_pump(upstream_reader, writer)),
            ]
            # Either side closing ends both: a client's abort reaches the gateway.
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait(*pumps)
        finally:
            for side in (upstream_writer, writer):
                side.close()
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
