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

- The toolkit's :class:`~meshkit.watch.RegistryWatch` follows the stream: a fresh state
  replaces the old one as a whole at SYNCED, then each change applies as it comes; when
  the stream breaks the catalog keeps serving what it knew until the registry's state is
  synced again. Until the first SYNCED :attr:`Catalog.ready` is False.
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
from meshkit.registration import Backoff, secret_metadata
from meshkit.tls import MeshTls
from meshkit.watch import RegistryStub, RegistryWatch
from plugmesh.registry.v1 import registry_pb2

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
        tls: Mutual TLS to the registry; plaintext when ``None``.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        call_timeout_seconds: float = 5.0,
        tls: MeshTls | None = None,
    ) -> None:
        self._watch = RegistryWatch(
            registry_address,
            read=self._service,
            on_change=self._publish,
            secret=secret,
            backoff=backoff,
            name="catalog",
            tls=tls,
        )
        self._metadata = secret_metadata(secret)
        self._timeout = call_timeout_seconds
        self._snapshot = Snapshot()
        self._schemas: dict[str, Schema] = {}
        self._broken: set[str] = set()
        self._subscribers: list[Subscriber] = []
        self._changed = asyncio.Event()

    @property
    def snapshot(self) -> Snapshot:
        """The current state; replaced as a whole on every change."""
        return self._snapshot

    @property
    def ready(self) -> bool:
        """Whether the registry's state has been received at least once (for ``/readyz``)."""
        return self._watch.synced

    @property
    def connected(self) -> bool:
        """Whether the watch stream is up and synced now."""
        return self._watch.connected

    async def wait_ready(self, timeout_seconds: float | None = None) -> bool:
        """Wait until :attr:`ready`; return whether it is (False after the timeout)."""
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._watch.wait_synced()
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
        await self._watch.start()

    async def close(self) -> None:
        """Stop watching and close the registry channel. Safe to call twice."""
        await self._watch.close()

    async def _service(self, pb: registry_pb2.Service, stub: RegistryStub) -> Service:
        schema = await self._schema(pb, stub) if pb.grpc_services else None
        return Service(
            name=pb.name,
            version=pb.version,
            grpc_services=tuple(pb.grpc_services),
            routes=tuple(Route(r.method, r.path, r.rpc) for r in pb.routes),
            instances=tuple(_instance(i) for i in pb.instances),
            schema_digest=pb.schema_digest,
            schema=schema,
        )

    async def _schema(self, pb: registry_pb2.Service, stub: RegistryStub) -> Schema | None:
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


def _instance(pb: registry_pb2.Instance) -> Instance:
    return Instance(
        pb.instance_id,
        pb.address,
        pb.health,
        version=pb.version,
        register_time_seconds=pb.register_time.ToNanoseconds() / 1e9,
        health_change_time_seconds=pb.health_change_time.ToNanoseconds() / 1e9,
        lease_expire_time_seconds=pb.lease_expire_time.ToNanoseconds() / 1e9,
    )
