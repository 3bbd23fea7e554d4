"""Following the registry's ``WatchServices`` stream: every registered service, kept current.

The stream's first messages (UPSERTED per service, then SYNCED) build a fresh table that
replaces the old one as a whole at SYNCED; after that each UPSERTED / REMOVED applies as
it comes. When the stream breaks (a registry restart) the table stays as it was and the
watch starts again with backoff; the new table replaces it once it is synced.

Each follower keeps what it needs of a service: ``read`` turns the registry's
``Service`` message into it, and ``on_change`` gets the whole table after every change.
Discovery (:mod:`meshkit.discovery`) keeps the serving instances per gRPC service; the
gateway's catalog loads each service's schema too, over the watch's own channel::

    async def read(service: registry_pb2.Service, registry: RegistryStub) -> Entry: ...

    watch = RegistryWatch(address, read=read, on_change=publish, name="discovery")
    await watch.start()                 # returns at once; follows in the background
    await watch.wait_synced()
    await watch.close()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeAlias, TypeVar

import grpc

from meshkit.registration import Backoff, secret_metadata
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls, dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["RegistryStub", "RegistryWatch"]

log = logging.getLogger(__name__)

_Entry = TypeVar("_Entry")
# A string: the async stub exists only in the type stubs.
RegistryStub: TypeAlias = "registry_pb2_grpc.RegistryServiceAsyncStub"

_SYNCED = registry_pb2.CHANGE_TYPE_SYNCED
_UPSERTED = registry_pb2.CHANGE_TYPE_UPSERTED
_REMOVED = registry_pb2.CHANGE_TYPE_REMOVED


class RegistryWatch(Generic[_Entry]):
    """The registered services, by name, as the entries ``read`` makes of them.

    Args:
        registry_address: ``host:port`` of the registry.
        read: Makes the entry of a listed service; it may call the registry with the
            stub it is given. A ``grpc.aio.AioRpcError`` it raises breaks the watch,
            which starts again.
        on_change: Called with the whole table after every change, in the watch's task.
            The table is new each time and never changed afterwards: keep it.
        secret: The registration secret, sent with every registry call when set.
        backoff: Delays between reconnections of a broken watch.
        name: Who follows (``catalog``, ``discovery``), for log lines and the task.
        tls: Mutual TLS to the registry; plaintext when ``None``.
        lease_renewals: Ask for every lease renewal too (an UPSERTED per renewal); only
            for a follower that shows leases, such as the gateway's console.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        read: Callable[[registry_pb2.Service, RegistryStub], Awaitable[_Entry]],
        on_change: Callable[[Mapping[str, _Entry]], None],
        secret: str | None = None,
        backoff: Backoff | None = None,
        name: str = "registry watch",
        tls: MeshTls | None = None,
        lease_renewals: bool = False,
    ) -> None:
        self._registry_address = registry_address
        self._request = registry_pb2.WatchServicesRequest(include_lease_renewals=lease_renewals)
        self._tls = tls
        self._read = read
        self._on_change = on_change
        self._metadata = secret_metadata(secret)
        self._backoff = backoff or Backoff()
        self._name = name
        self._table: Mapping[str, _Entry] = {}
        self._synced = asyncio.Event()
        self._connected = False
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def synced(self) -> bool:
        """Whether the registry's table has arrived at least once."""
        return self._synced.is_set()

    @property
    def connected(self) -> bool:
        """Whether the watch stream is up and synced now."""
        return self._connected

    async def wait_synced(self) -> None:
        """Return once the registry's table has arrived."""
        await self._synced.wait()

    async def start(self) -> None:
        """Follow the registry in the background; returns at once. Safe to call twice;
        does nothing after :meth:`close`."""
        if self._task is not None or self._closed:
            return
        self._channel = dial(self._registry_address, self._tls)
        stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        self._task = asyncio.create_task(self._run(stub), name=f"{self._name} watch")

    async def close(self) -> None:
        """Stop following and close the registry channel. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        self._connected = False

    async def _run(self, stub: RegistryStub) -> None:
        failures = 0
        while True:
            try:
                synced = await self._follow(stub)
                reason = "the watch stream ended"
            except grpc.aio.AioRpcError as exc:
                synced, reason = False, f"{exc.code().name}: {exc.details()}"
            except Exception:
                # A bug must not end the watch for good: log it and watch again.
                log.exception("following the registry failed", extra={"watch": self._name})
                synced, reason = False, "an unexpected error"
            self._connected = False
            failures = 0 if synced else failures + 1
            if not synced and self._tls is not None:
                stub = await self._redial()
            delay = self._backoff.delay(failures)
            log.warning(
                "registry watch lost; watching again",
                extra={"watch": self._name, "reason": reason, "retry_in_seconds": round(delay, 2)},
            )
            await asyncio.sleep(delay)

    async def _redial(self) -> RegistryStub:
        # A channel presents the certificate read when it was made: after a failure, a
        # fresh one presents a renewed certificate (the old one may have expired).
        old, self._channel = self._channel, dial(self._registry_address, self._tls)
        if old is not None:
            await old.close()
        return registry_pb2_grpc.RegistryServiceStub(self._channel)

    async def _follow(self, stub: RegistryStub) -> bool:
        """Follow one watch stream until it ends; return whether it got as far as SYNCED."""
        call = stub.WatchServices(self._request, metadata=self._metadata)
        fresh: dict[str, _Entry] | None = {}
        try:
            async for change in call:
                kind, name = change.change_type, change.service.name
                if kind == _SYNCED and fresh is not None:
                    self._connected = True
                    self._synced.set()
                    self._publish(fresh)
                    fresh = None
                    log.info(
                        "registry watch synced",
                        extra={"watch": self._name, "services": len(self._table)},
                    )
                elif kind in (_UPSERTED, _REMOVED):
                    # Before SYNCED the fresh table grows; after it each change makes a new one.
                    table = fresh if fresh is not None else dict(self._table)
                    if kind == _UPSERTED:
                        table[name] = await self._read(change.service, stub)
                    else:
                        table.pop(name, None)
                    if fresh is None:
                        self._publish(table)
        finally:
            call.cancel()
        return fresh is None

    def _publish(self, table: Mapping[str, _Entry]) -> None:
        self._table = table
        self._on_change(table)
