"""The gateway's catalog: every registered service, its methods and instances, kept
current by the registry's ``WatchServices`` stream.

Use::

    catalog = Catalog(registry_address="127.0.0.1:50050")
    await catalog.start()                  # returns at once; watches in the background
    await catalog.wait_ready(timeout_seconds=5)

    method = catalog.method("/plugmesh.users.v1.UserService/GetUser")   # or "pkg.S.M"
    method.descriptor                      # google.protobuf MethodDescriptor
    method.service                         # "users": the mesh service that serves it
    catalog.message_class(method.descriptor.input_type)
    for method in catalog.methods(): ...   # every routable method, for a route table

    unsubscribe = catalog.subscribe(on_change)   # on_change(snapshot), after every change
    async for snapshot in catalog.changes(): ... # the same, coalesced, current one first

    await catalog.close()

Behaviour:

- The stream's first messages (UPSERTED per service, then SYNCED) build a fresh state
  that replaces the old one as a whole at SYNCED; after that each UPSERTED / REMOVED is
  applied as it comes. Until the first SYNCED :attr:`Catalog.ready` is False.
- When the stream breaks (registry restart) the catalog keeps serving what it knew and
  watches again with backoff; the new snapshot replaces the old state when it is synced.
- A service's schema is fetched with ``GetServiceSchema`` when its digest is new to the
  catalog, and loaded into a pool of its own (see :mod:`gateway.schemas`).
- Subscribers are called synchronously, in the catalog's task, after the new snapshot
  is in place; ``snapshot.schema_generation`` tells whether the methods changed or only
  health or instances did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Callable, Mapping

import grpc
from google.protobuf import descriptor, message, message_factory

from gateway.model import Instance, Method, Route, Service, Snapshot, build_snapshot
from gateway.schemas import Schema, SchemaError
from meshkit.registration import SECRET_METADATA_KEY, Backoff
from meshkit.tasks import cancel_and_wait
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

__all__ = [
    "Catalog",
    "Instance",
    "Method",
    "Route",
    "Service",
    "Snapshot",
    "Subscriber",
]

log = logging.getLogger(__name__)

Subscriber = Callable[[Snapshot], None]


class Catalog:
    """The registry's view of the mesh, pushed by its watch stream.

    Args:
        registry_address: ``host:port`` of the registry.
        secret: The registration secret, sent with every registry call when set.
        backoff: Delays between reconnections of a broken watch.
        call_timeout_seconds: Deadline of each ``GetServiceSchema`` call.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        call_timeout_seconds: float = 5.0,
    ) -> None:
        self._registry_address = registry_address
        self._metadata = ((SECRET_METADATA_KEY, secret),) if secret else ()
        self._backoff = backoff or Backoff()
        self._timeout = call_timeout_seconds
        self._snapshot = Snapshot()
        self._schemas: dict[str, Schema] = {}
        self._broken: set[str] = set()
        self._subscribers: list[Subscriber] = []
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()
        self._connected = False
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def snapshot(self) -> Snapshot:
        """The current state; replaced as a whole on every change."""
        return self._snapshot

    @property
    def ready(self) -> bool:
        """Whether the registry's state has been received at least once (for ``/readyz``)."""
        return self._ready.is_set()

    @property
    def connected(self) -> bool:
        """Whether the watch stream is up and synced now."""
        return self._connected

    async def wait_ready(self, timeout_seconds: float | None = None) -> bool:
        """Wait until :attr:`ready`; return whether it is (False after the timeout)."""
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._ready.wait()
        except TimeoutError:
            return False
        return True

    def method(self, name: str) -> Method | None:
        """The method ``/pkg.Service/Method`` or ``pkg.Service.Method``, if served."""
        return self._snapshot.method(name)

    def methods(self) -> tuple[Method, ...]:
        """Every served method, ordered by full name."""
        return self._snapshot.methods()

    def service(self, name: str) -> Service | None:
        """A mesh service by short name ("users")."""
        return self._snapshot.service(name)

    def schemas(self) -> tuple[Schema, ...]:
        """The schema of every service that has one, ordered by service name."""
        services = self._snapshot.services
        found = (services[name].schema for name in sorted(services))
        return tuple(schema for schema in found if schema is not None)

    @staticmethod
    def message_class(message_descriptor: descriptor.Descriptor) -> type[message.Message]:
        """The message class of a descriptor from any of the catalog's pools."""
        return message_factory.GetMessageClass(message_descriptor)

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber(snapshot)`` after every change; returns the unsubscribe call."""
        self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            if subscriber in self._subscribers:
                self._subscribers.remove(subscriber)

        return unsubscribe

    async def changes(self) -> AsyncGenerator[Snapshot, None]:
        """Yield the current snapshot, then the latest one after each change (coalesced:
        a slow reader skips intermediate snapshots, never the last)."""
        seen = -1
        while True:
            current = self._snapshot
            if current.generation != seen:
                seen = current.generation
                yield current
                continue
            self._changed.clear()
            await self._changed.wait()

    async def start(self) -> None:
        """Start watching the registry in the background; returns at once. Idempotent."""
        if self._task is not None or self._closed:
            return
        self._channel = grpc.aio.insecure_channel(self._registry_address)
        self._task = asyncio.create_task(self._run(), name="catalog-watch")

    async def close(self) -> None:
        """Stop watching and close the registry channel. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()
        self._connected = False

    async def _run(self) -> None:
        assert self._channel is not None
        stub = registry_pb2_grpc.RegistryServiceStub(self._channel)
        failures = 0
        while True:
            try:
                synced = await self._watch(stub)
                reason = "the watch stream ended"
            except grpc.aio.AioRpcError as exc:
                synced = False
                reason = f"{exc.code().name}: {exc.details()}"
            except Exception:
                # A bug must not end the watch for good: log it and watch again.
                log.exception("following the registry failed")
                synced, reason = False, "an unexpected error"
            self._connected = False
            failures = 0 if synced else failures + 1
            delay = self._backoff.delay(failures)
            log.warning(
                "registry watch lost; watching again",
                extra={"reason": reason, "retry_in_seconds": round(delay, 2)},
            )
            await asyncio.sleep(delay)

    async def _watch(self, stub: registry_pb2_grpc.RegistryServiceAsyncStub) -> bool:
        """Follow one watch stream until it ends; return whether it got as far as SYNCED."""
        call = stub.WatchServices(registry_pb2.WatchServicesRequest(), metadata=self._metadata)
        fresh: dict[str, Service] | None = {}
        try:
            async for change in call:
                kind = change.change_type
                if kind == registry_pb2.CHANGE_TYPE_SYNCED and fresh is not None:
                    self._connected = True
                    self._ready.set()
                    self._publish(fresh)
                    fresh = None
                    log.info("catalog synced", extra={"services": len(self._snapshot.services)})
                elif kind == registry_pb2.CHANGE_TYPE_UPSERTED:
                    service = await self._service(change.service, stub)
                    if fresh is not None:
                        fresh[service.name] = service
                    else:
                        self._publish({**self._snapshot.services, service.name: service})
                elif kind == registry_pb2.CHANGE_TYPE_REMOVED:
                    if fresh is not None:
                        fresh.pop(change.service.name, None)
                    else:
                        remaining = dict(self._snapshot.services)
                        remaining.pop(change.service.name, None)
                        self._publish(remaining)
        finally:
            call.cancel()
        return fresh is None

    async def _service(
        self, pb: registry_pb2.Service, stub: registry_pb2_grpc.RegistryServiceAsyncStub
    ) -> Service:
        schema = await self._schema(pb, stub) if pb.grpc_services else None
        return Service(
            name=pb.name,
            version=pb.version,
            grpc_services=tuple(pb.grpc_services),
            routes=tuple(Route(r.method, r.path, r.rpc) for r in pb.routes),
            instances=tuple(Instance(i.instance_id, i.address, i.health) for i in pb.instances),
            schema_digest=pb.schema_digest,
            schema=schema,
        )

    async def _schema(
        self, pb: registry_pb2.Service, stub: registry_pb2_grpc.RegistryServiceAsyncStub
    ) -> Schema | None:
        cached = self._schemas.get(pb.schema_digest)
        if cached is not None or pb.schema_digest in self._broken:
            return cached
        try:
            response = await stub.GetServiceSchema(
                registry_pb2.GetServiceSchemaRequest(service=pb.name),
                metadata=self._metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return None  # removed meanwhile: its REMOVED change follows
        digest = response.schema_digest
        if digest in self._schemas:
            return self._schemas[digest]
        try:
            schema = Schema.build(digest, response.file_descriptor_set)
        except SchemaError as exc:
            log.error("cannot load a schema", extra={"service": pb.name, "error": str(exc)})
            self._broken.add(digest)
            return None
        self._schemas[digest] = schema
        return schema

    def _publish(self, services: Mapping[str, Service]) -> None:
        self._snapshot = build_snapshot(services, self._snapshot)
        used = {s.schema.digest for s in services.values() if s.schema is not None}
        self._schemas = {d: s for d, s in self._schemas.items() if d in used}
        self._changed.set()
        for subscriber in tuple(self._subscribers):
            try:
                subscriber(self._snapshot)
            except Exception:
                log.exception("a catalog subscriber failed")
