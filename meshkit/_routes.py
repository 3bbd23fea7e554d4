"""The callables of :class:`~meshkit.discovery.ServiceChannel`: each call goes to the next
serving instance, with the deadline and metadata the handler's call carries along."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, cast

import grpc

from meshkit._retried import RetriedCall, is_safe
from meshkit.channels import InstanceChannel
from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY
from meshkit.inbound import current_call
from meshkit.picker import Deadline
from meshkit.tracing import TRACEPARENT, current_trace

if TYPE_CHECKING:
    from meshkit.discovery import Discovery

__all__ = ["Metadata", "Route", "StreamStream", "StreamUnary", "UnaryStream", "UnaryUnary"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")
Metadata: TypeAlias = grpc.aio.Metadata | Sequence[tuple[str, str | bytes]]
Requests: TypeAlias = AsyncIterator[_Req] | Iterator[_Req] | None


class Route:
    """One method of one service: each call goes to the next serving instance, and a
    unary call of a safe method that is UNAVAILABLE goes once more to another one."""

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
        self._safe = is_safe(method)

    def call(
        self,
        cardinality: str,
        request: Any,
        timeout: float | None,
        metadata: Metadata | None,
        **options: Any,
    ) -> Any:
        """Start the call with the carried deadline and metadata; ``cardinality`` names
        the channel's factory (``unary_stream``, …)."""
        seconds = _deadline(timeout)
        pairs = _metadata(metadata)
        deadline = Deadline(seconds)
        instance = self._discovery.pick(self._grpc_service)
        first = self._start(cardinality, instance, request, seconds, pairs, options)
        if cardinality != "unary_unary" or not self._safe:
            return first

        def again(error: grpc.aio.AioRpcError) -> Any:
            other = self._discovery.retry(
                self._grpc_service, instance, error, deadline, method=self._method
            )
            if other is None:
                return None  # the first failure stands
            return self._start(cardinality, other, request, deadline.remaining(), pairs, options)

        return RetriedCall(first, again)

    def _start(
        self,
        cardinality: str,
        instance: InstanceChannel,
        request: Any,
        seconds: float | None,
        pairs: tuple[tuple[str, str | bytes], ...],
        options: dict[str, Any],
    ) -> Any:
        factory = getattr(instance.channel, cardinality)
        multicallable = factory(self._method, self._serializer, self._deserializer)
        return multicallable(request, timeout=seconds, metadata=pairs, **options)


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
    # The identity and its signature go together: a caller that sets either sends its own.
    if inbound is not None and not keys & {IDENTITY_KEY, SIGNATURE_KEY}:
        carried.extend(inbound.identity)
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
