"""The callables of :class:`~meshkit.discovery.ServiceChannel`: each call goes to the next
serving instance, with the deadline and metadata the handler's call carries along."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

import grpc

from meshkit.events.tracecontext import TRACEPARENT, current_trace
from meshkit.inbound import current_call

if TYPE_CHECKING:
    from meshkit.discovery import Discovery

__all__ = ["Metadata", "Route", "StreamStream", "StreamUnary", "UnaryStream", "UnaryUnary"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
Metadata: TypeAlias = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]
Requests: TypeAlias = AsyncIterator[_Req] | Iterator[_Req] | None


class Route:
    """One method of one service: each call goes to the next serving instance."""

    def __init__(
        self,
        discovery: Discovery,
        grpc_service: str,
        method: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> None:
        self._discovery = discovery
        self._grpc_service = grpc_service
        self._method = method
        self._serializer = serializer
        self._deserializer = deserializer

    def call(
        self,
        cardinality: str,
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        **options: Any,
    ) -> Any:
        """Start the call on the next instance's channel with the carried deadline and
        metadata; ``cardinality`` names the channel's factory (``unary_stream``, …)."""
        channel = self._discovery.pick(self._grpc_service)
        factory = getattr(channel, cardinality)
        multicallable = factory(self._method, self._serializer, self._deserializer)
        return multicallable(
            request, timeout=_deadline(timeout), metadata=_metadata(metadata), **options
        )


def _deadline(timeout: float | None) -> float | None:
    inbound = current_call()
    remaining = inbound.time_remaining() if inbound is not None else None
    if remaining is None:
        return timeout
    return remaining if timeout is None else min(timeout, remaining)


def _metadata(given: Metadata | None) -> tuple[tuple[str, str | bytes], ...]:
    pairs = tuple((key, value) for key, value in given or ())
    keys = {key for key, _ in pairs}
    carried: list[tuple[str, str | bytes]] = []
    trace = current_trace()
    if trace is not None and TRACEPARENT not in keys:
        carried.extend(trace.headers().items())
    inbound = current_call()
    if inbound is not None:
        carried.extend(pair for pair in inbound.identity if pair[0] not in keys)
    return pairs + tuple(carried)


# The four callables differ only in the signature their base class gives them.


class UnaryUnary(grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp], Generic[_Req, _Resp]):
    def __init__(self, route: Route) -> None:
        self._route = route

    def __call__(
        self,
        request: _Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.UnaryUnaryCall[_Req, _Resp]:
        return cast(
            grpc.aio.UnaryUnaryCall[_Req, _Resp],
            self._route.call(
                "unary_unary",
                request,
                timeout,
                metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )


class UnaryStream(grpc.aio.UnaryStreamMultiCallable[_Req, _Resp], Generic[_Req, _Resp]):
    def __init__(self, route: Route) -> None:
        self._route = route

    def __call__(
        self,
        request: _Req,
        *,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.UnaryStreamCall[_Req, _Resp]:
        return cast(
            grpc.aio.UnaryStreamCall[_Req, _Resp],
            self._route.call(
                "unary_stream",
                request,
                timeout,
                metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )


class StreamUnary(grpc.aio.StreamUnaryMultiCallable[_Req, _Resp], Generic[_Req, _Resp]):
    def __init__(self, route: Route) -> None:
        self._route = route

    def __call__(
        self,
        request_iterator: Requests[_Req] = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.StreamUnaryCall[_Req, _Resp]:
        return cast(
            grpc.aio.StreamUnaryCall[_Req, _Resp],
            self._route.call(
                "stream_unary",
                request_iterator,
                timeout,
                metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )


class StreamStream(grpc.aio.StreamStreamMultiCallable[_Req, _Resp], Generic[_Req, _Resp]):
    def __init__(self, route: Route) -> None:
        self._route = route

    def __call__(
        self,
        request_iterator: Requests[_Req] = None,
        timeout: float | None = None,
        metadata: Metadata | None = None,
        credentials: grpc.CallCredentials | None = None,
        wait_for_ready: bool | None = None,
        compression: grpc.Compression | None = None,
    ) -> grpc.aio.StreamStreamCall[_Req, _Resp]:
        return cast(
            grpc.aio.StreamStreamCall[_Req, _Resp],
            self._route.call(
                "stream_stream",
                request_iterator,
                timeout,
                metadata,
                credentials=credentials,
                wait_for_ready=wait_for_ready,
                compression=compression,
            ),
        )
