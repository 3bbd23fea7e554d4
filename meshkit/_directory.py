"""Which addresses serve which gRPC service, followed on the registry's watch stream.

The stream's first messages (UPSERTED per service, then SYNCED) build a fresh table that
replaces the old one at SYNCED; after that each UPSERTED / REMOVED applies as it comes.
When the stream breaks (a registry restart) the directory keeps what it knew and watches
again with backoff. Only SERVING instances are listed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from meshkit.registration import SECRET_METADATA_KEY, Backoff
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = ["Directory"]

log = logging.getLogger(__name__)

_SERVING = registry_pb2.HEALTH_STATUS_SERVING
_REMOVED = registry_pb2.CHANGE_TYPE_REMOVED


class Directory:
    """The serving addresses of every gRPC service registered in the mesh.

    Args:
        registry_address: ``host:port`` of the registry.
        secret: The registration secret, sent with the watch when set.
        backoff: Delays between reconnections of a broken watch.
        on_change: Called with every address the table holds, after each change.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        on_change: Callable[[frozenset[str]], None] = lambda _: None,
    ) -> None:
        self._registry_address = registry_address
        self._metadata = ((SECRET_METADATA_KEY, secret),) if secret else ()
        self._backoff = backoff or Backoff()
        self._on_change = on_change
        self._services: dict[str, registry_pb2.Service] = {}
        self._serving: dict[str, tuple[str, ...]] = {}
        self._synced = asyncio.Event()
        self._changed = asyncio.Event()

    @property
    def synced(self) -> bool:
        """Whether the registry's view has arrived at least once."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        """Return once the registry's view has arrived."""
        await self._synced.wait()

    async def wait_changed(self) -> None:
        """Return at the next change of the table."""
        await self._changed.wait()

    def serving(self, grpc_service: str) -> tuple[str, ...]:
        """The addresses of SERVING instances of ``grpc_service`` (``pkg.Service``)."""
        return self._serving.get(grpc_service, ())

    async def follow(self) -> None:
        """Follow the registry until cancelled, watching again whenever the stream ends."""
        failures = 0
        async with grpc.aio.insecure_channel(self._registry_address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            while True:
                try:
                    synced = await self._watch(stub)
                    reason = "the watch stream ended"
                except grpc.aio.AioRpcError as exc:
                    synced, reason = False, f"{exc.code().name}: {exc.details()}"
                except Exception:
                    # A bug must not end discovery for good: log it and watch again.
                    log.exception("following the registry failed")
                    synced, reason = False, "an unexpected error"
                failures = 0 if synced else failures + 1
                delay = self._backoff.delay(failures)
                log.warning(
                    "discovery lost the registry watch; watching again",
                    extra={"reason": reason, "retry_in_seconds": round(delay, 2)},
                )
                await asyncio.sleep(delay)

    async def _watch(self, stub: registry_pb2_grpc.RegistryServiceAsyncStub) -> bool:
        """Follow one watch stream until it ends; return whether it got as far as SYNCED."""
        call = stub.WatchServices(registry_pb2.WatchServicesRequest(), metadata=self._metadata)
        fresh: dict[str, registry_pb2.Service] | None = {}
        try:
            async for change in call:
                kind = change.change_type
                if kind == registry_pb2.CHANGE_TYPE_SYNCED and fresh is not None:
                    self._publish(fresh)
                    fresh = None
                    self._synced.set()
                elif kind in (registry_pb2.CHANGE_TYPE_UPSERTED, _REMOVED):
                    target = fresh if fresh is not None else dict(self._services)
                    target.pop(change.service.name, None)
                    if kind != _REMOVED:
                        target[change.service.name] = change.service
                    if fresh is None:
                        self._publish(target)
        finally:
            call.cancel()
        return fresh is None

    def _publish(self, services: dict[str, registry_pb2.Service]) -> None:
        self._services = services  # a table of its own: changes copy it before editing
        serving: dict[str, tuple[str, ...]] = {}
        for service in services.values():
            addresses = tuple(i.address for i in service.instances if i.health == _SERVING)
            for name in service.grpc_services:
                serving[name] = addresses
        self._serving = serving
        self._changed.set()
        self._changed = asyncio.Event()
        self._on_change(frozenset(a for addresses in serving.values() for a in addresses))
