"""Calls to the plugins behind the gateway, at the bytes level.

One channel per instance address, opened when the catalog reports the instance and
closed (with grace for the calls in flight) when it leaves. Each call goes to the next
SERVING instance of the method's service, round-robin. Messages are passed as serialized
bytes, never decoded, so the HTTP side (which encodes and decodes them itself) and the
gRPC ingress (which never decodes them) share this module::

    upstreams = Upstreams(catalog)
    await upstreams.start()

    method = catalog.method("/pkg.Service/Method")
    reply = await upstreams.unary(method, request_bytes, timeout_seconds=5.0, metadata=pairs)
    reply.body, reply.initial_metadata, reply.trailing_metadata

    async with upstreams.server_stream(method, request_bytes, timeout_seconds=None) as stream:
        async for message_bytes in stream: ...
        await stream.trailing_metadata()

    reply = await upstreams.client_stream(method, async_iterator_of_bytes, timeout_seconds=5.0)
    async with upstreams.bidi_stream(method, requests, timeout_seconds=None) as stream: ...

    await upstreams.close()

Failures are raised as ``grpc.aio.AioRpcError`` with the upstream's code, details and
trailing metadata (so ``meshkit.errors.status_of(exc)`` gives its ``google.rpc.Status``).
When no instance serves, the error is a :class:`NoHealthyInstance` (UNAVAILABLE, naming
the service, with an ``ErrorInfo`` of reason ``NO_HEALTHY_INSTANCE``).

Instances are picked as discovery picks them (:class:`meshkit.picker.Picker`): a *safe*
call (``idempotency_level`` NO_SIDE_EFFECTS or IDEMPOTENT) that fails with UNAVAILABLE
is retried once on another serving instance, within the same deadline; a
server-streaming call only if no message had arrived. Metadata is passed as given:
filter it first with :mod:`gateway.metadata`.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.catalog import Catalog
from gateway.metadata import STATUS_DETAILS_KEY, Metadata
from gateway.model import Instance, Method, Snapshot
from meshkit.channels import UNLIMITED, ChannelPool
from meshkit.client_spans import client_interceptors
from meshkit.picker import Deadline, Picker
from meshkit.spans import SpanRecorder
from meshkit.tls import MeshTls

__all__ = ["NoHealthyInstance", "ResponseStream", "UnaryResponse", "Upstreams"]

ERROR_DOMAIN = "gateway.plugmesh"


@dataclass(frozen=True)
class UnaryResponse:
    """One response message, serialized, with the upstream's metadata."""

    body: bytes
    initial_metadata: Metadata
    trailing_metadata: Metadata
    instance: Instance


class NoHealthyInstance(grpc.aio.AioRpcError):
    """UNAVAILABLE: no instance of the service is SERVING."""

    def __init__(self, service: str, method: str) -> None:
        message = f"no healthy instance of service {service!r} can serve {method}"
        info = error_details_pb2.ErrorInfo(
            reason="NO_HEALTHY_INSTANCE",
            domain=ERROR_DOMAIN,
            metadata={"service": service, "method": method},
        )
        detail = any_pb2.Any()
        detail.Pack(info)
        status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=[detail])
        super().__init__(
            grpc.StatusCode.UNAVAILABLE,
            grpc.aio.Metadata(),
            grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString())),
            message,
        )
        self.service = service


class Upstreams:
    """Channels to every instance in the catalog, and calls over them.

    Args:
        catalog: Where instances and their health come from.
        close_grace_seconds: How long calls in flight to an instance that left may finish.
        spans: Where the calls' client spans go; none when ``None`` (traces off).
        tls: Mutual TLS to the instances; plaintext when ``None``.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        close_grace_seconds: float = 5.0,
        spans: SpanRecorder | None = None,
        tls: MeshTls | None = None,
    ) -> None:
        self._catalog = catalog
        self._channels = ChannelPool(
            grace_seconds=close_grace_seconds,
            options=UNLIMITED,
            interceptors=client_interceptors(spans),
            tls=tls,
        )
        self._picker = Picker(self._serving)
        self._served: collections.Counter[tuple[str, str]] = collections.Counter()
        self._last_serving: frozenset[tuple[str, str]] = frozenset()
        self._unsubscribe: Callable[[], None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Follow the catalog: open and close channels as instances come and go. Idempotent."""
        if self._unsubscribe is not None or self._closed:
            return
        self._unsubscribe = self._catalog.subscribe(self._sync)
        self._sync(self._catalog.snapshot)

    async def close(self) -> None:
        """Close every channel, cutting calls in flight. Safe to call twice."""
        self._closed = True
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        await self._channels.close()

    @property
    def addresses(self) -> frozenset[str]:
        """Addresses with an open channel."""
        return self._channels.addresses

    @property
    def served(self) -> Mapping[str, int]:
        """How many unary calls each instance address answered with OK, since start: how
        the load was spread (a copy)."""
        by_address: collections.Counter[str] = collections.Counter()
        for (_, address), count in self._served.items():
            by_address[address] += count
        return dict(by_address)

    def served_by_service(self) -> Mapping[tuple[str, str], int]:
        """The same by (mesh service, instance address), for the metrics (a copy)."""
        return dict(self._served)

    def pick(self, method: Method, *, exclude: str = "") -> Instance:
        """The next SERVING instance for ``method``, round-robin, other than ``exclude``.

        Raises:
            NoHealthyInstance: no instance serves.
        """
        instance = self._picker.pick(method.service, exclude=exclude)
        if instance is None:
            raise NoHealthyInstance(method.service, method.path)
        return instance

    async def unary(
        self,
        method: Method,
        request: bytes,
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> UnaryResponse:
        """Call a unary method; retried once elsewhere when safe and UNAVAILABLE."""
        deadline = Deadline(timeout_seconds)
        instance = self.pick(method)
        try:
            return await self._unary(instance, method, request, deadline, metadata)
        except grpc.aio.AioRpcError as exc:
            retry = self._retry_target(method, exc, instance, deadline)
            if retry is None:
                raise
        return await self._unary(retry, method, request, deadline, metadata)

    async def client_stream(
        self,
        method: Method,
        requests: AsyncIterable[bytes],
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> UnaryResponse:
        """Call a client-streaming method (never retried: the requests are consumed)."""
        instance = self.pick(method)
        multicallable = self._channels.get(instance.address).stream_unary(method.path)
        call = multicallable(requests, timeout=timeout_seconds, metadata=metadata)  # type: ignore[arg-type]  # the stubs want a sync iterator; grpc.aio takes async ones
        body: bytes = await call
        return UnaryResponse(
            body,
            tuple(await call.initial_metadata()),
            tuple(await call.trailing_metadata()),
            instance,
        )

    def server_stream(
        self,
        method: Method,
        request: bytes,
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream:
        """Call a server-streaming method; the call starts at the first read."""
        deadline = Deadline(timeout_seconds)

        def start(chosen: Instance | None) -> tuple[Instance, Any]:
            instance = chosen or self.pick(method)
            multicallable = self._channels.get(instance.address).unary_stream(method.path)
            call = multicallable(request, timeout=deadline.remaining(), metadata=metadata)
            return instance, call

        retry = None
        if method.safe:

            def retry(exc: grpc.aio.AioRpcError, failed: Instance) -> Instance | None:
                return self._retry_target(method, exc, failed, deadline)

        return ResponseStream(start, retry)

    def bidi_stream(
        self,
        method: Method,
        requests: AsyncIterable[bytes],
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream:
        """Call a bidirectional-streaming method (never retried)."""

        def start(chosen: Instance | None) -> tuple[Instance, Any]:
            instance = chosen or self.pick(method)
            multicallable = self._channels.get(instance.address).stream_stream(method.path)
            call = multicallable(requests, timeout=timeout_seconds, metadata=metadata)  # type: ignore[arg-type]  # async iterators are fine in grpc.aio
            return instance, call

        return ResponseStream(start, None)

    async def _unary(
        self,
        instance: Instance,
        method: Method,
        request: bytes,
        deadline: Deadline,
        metadata: Metadata,
    ) -> UnaryResponse:
        multicallable = self._channels.get(instance.address).unary_unary(method.path)
        call = multicallable(request, timeout=deadline.remaining(), metadata=metadata)
        body: bytes = await call
        self._served[method.service, instance.address] += 1
        return UnaryResponse(
            body,
            tuple(await call.initial_metadata()),
            tuple(await call.trailing_metadata()),
            instance,
        )

    def _retry_target(
        self,
        method: Method,
        exc: grpc.aio.AioRpcError,
        failed: Instance,
        deadline: Deadline,
    ) -> Instance | None:
        if not method.safe or isinstance(exc, NoHealthyInstance):
            return None
        return self._picker.retry(method.service, failed, exc, deadline, method=method.path)

    def _serving(self, service: str) -> tuple[Instance, ...]:
        found = self._catalog.snapshot.service(service)
        return found.serving_instances if found is not None else ()

    def _sync(self, snapshot: Snapshot) -> None:
        present = {(s.name, i.address) for s in snapshot.services.values() for i in s.instances}
        self._channels.keep(address for _, address in present)
        serving = frozenset(
            (i.instance_id, i.address)
            for s in snapshot.services.values()
            for i in s.serving_instances
        )
        # An instance serving again (a crashed one restarted at its address within its
        # lease) must not wait out the backoff of the channel that failed to reach it.
        self._channels.reconnect({address for _, address in serving - self._last_serving})
        self._last_serving = serving
        # Counts of instances that left go with them: the metric's series stay bounded.
        for gone in set(self._served) - present:
            del self._served[gone]
        self._picker.keep(snapshot.services)


# Starts the call on the given instance, or on the next one when None.
Starter = Callable[[Instance | None], tuple[Instance, Any]]
Retry = Callable[[grpc.aio.AioRpcError, Instance], Instance | None]


class ResponseStream:
    """The response messages of a streaming call, serialized, as an async iterator.

    Use it as an async context manager, or call :meth:`cancel` when done with it early.
    """

    def __init__(self, start: Starter, retry: Retry | None) -> None:
        self._start = start
        self._retry = retry
        self._call: Any = None
        self._instance: Instance | None = None
        self._received = False

    @property
    def instance(self) -> Instance | None:
        """The instance serving the call, once started."""
        return self._instance

    async def __aenter__(self) -> ResponseStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cancel()

    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        call = self._started()
        try:
            message = await call.read()
        except grpc.aio.AioRpcError as exc:
            target = None
            if self._retry is not None and not self._received and self._instance is not None:
                target = self._retry(exc, self._instance)
            if target is None:
                raise
            self._retry = None
            self._instance, self._call = self._start(target)
            return await self.__anext__()
        if message is grpc.aio.EOF:
            raise StopAsyncIteration
        self._received = True
        return bytes(message)

    async def initial_metadata(self) -> Metadata:
        """The upstream's initial metadata (of the call that finally served)."""
        return tuple(await self._started().initial_metadata())

    async def trailing_metadata(self) -> Metadata:
        """The upstream's trailing metadata, once the stream has ended."""
        return tuple(await self._started().trailing_metadata())

    def cancel(self) -> None:
        """Cancel the call if it is still running."""
        if self._call is not None:
            self._call.cancel()

    def _started(self) -> Any:
        if self._call is None:
            self._instance, self._call = self._start(None)
        return self._call
