"""Client spans of gRPC calls: the interceptors of the channels in
:class:`meshkit.channels.ChannelPool` when traces are on.

A call that carries a ``traceparent`` (one made on behalf of a request: the gateway's
upstream calls, a handler's calls through discovery) becomes a client span, the child of
that context, and goes out with the span's context instead, so the callee's server span
is the client span's child. A call without one (the registry watch, health checks) is no
span and goes out unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import Any

import grpc

from meshkit._rpc_spans import end_rpc_span, metadata_trace, start_rpc_span
from meshkit.spans import OpenSpan, SpanKind, SpanRecorder
from meshkit.tracing import TRACEPARENT, TRACESTATE

__all__ = ["client_interceptors"]

_Details = grpc.aio.ClientCallDetails
_Continuation = Callable[[_Details, Any], Awaitable[Any]]


def client_interceptors(spans: SpanRecorder | None) -> tuple[grpc.aio.ClientInterceptor, ...]:
    """The interceptors a channel needs for client spans; none with traces off."""
    if spans is None:
        return ()
    ends = _Ends()
    return (
        _UnaryUnary(spans, ends),
        _StreamUnary(spans, ends),
        _UnaryStream(spans, ends),
        _StreamStream(spans, ends),
    )


class _Ends:
    """Ends the spans of streaming calls once their status is known.

    A done callback cannot read a ``grpc.aio`` call's code (a coroutine), so a short
    task does; the tasks are held here until they finish.
    """

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def when_done(self, span: OpenSpan, call: Any) -> None:
        def done(_: object) -> None:
            task = asyncio.get_running_loop().create_task(_end_with_code(span, call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        call.add_done_callback(done)


async def _end_with_code(span: OpenSpan, call: Any) -> None:
    try:
        code = await call.code()
    except asyncio.CancelledError:
        span.end(error="CANCELLED")
        raise
    end_rpc_span(span, code.name, SpanKind.CLIENT)


class _Spanning:
    def __init__(self, spans: SpanRecorder, ends: _Ends) -> None:
        self._spans = spans
        self._ends = ends

    def _begin(self, details: _Details) -> tuple[OpenSpan | None, _Details]:
        metadata = tuple(details.metadata or ())
        parent = metadata_trace(metadata)
        if parent is None:
            return None, details
        method = details.method
        path = method.decode() if isinstance(method, bytes) else method
        span = start_rpc_span(self._spans, path, SpanKind.CLIENT, parent)
        kept = [pair for pair in metadata if pair[0] not in (TRACEPARENT, TRACESTATE)]
        carried = grpc.aio.Metadata(*kept, *span.trace.headers().items())
        return span, _Details(
            details.method, details.timeout, carried, details.credentials, details.wait_for_ready
        )


async def _awaited(span: OpenSpan | None, call: Any) -> Any:
    """Wait for a single-response call and end its span; the call is returned as it
    is, and awaiting it again gives its response or raises its error."""
    if span is None:
        return call
    code = "OK"
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        code = exc.code().name
    except asyncio.CancelledError:
        span.end(error="CANCELLED")
        raise
    end_rpc_span(span, code, SpanKind.CLIENT)
    return call


class _UnaryUnary(_Spanning, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: _Continuation,
        details: _Details,
        request: Any,
    ) -> Any:
        span, details = self._begin(details)
        return await _awaited(span, await continuation(details, request))


class _StreamUnary(_Spanning, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(
        self,
        continuation: _Continuation,
        details: _Details,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        span, details = self._begin(details)
        call = await continuation(details, request_iterator)
        if span is not None:
            # Not awaited here: a caller writing its requests with call.write() waits
            # for this interceptor to return.
            self._ends.when_done(span, call)
        return call


class _UnaryStream(_Spanning, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(
        self,
        continuation: _Continuation,
        details: _Details,
        request: Any,
    ) -> Any:
        span, details = self._begin(details)
        call = await continuation(details, request)
        if span is not None:
            self._ends.when_done(span, call)
        return call


class _StreamStream(_Spanning, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(
        self,
        continuation: _Continuation,
        details: _Details,
        request_iterator: AsyncIterable[Any] | Iterable[Any],
    ) -> Any:
        span, details = self._begin(details)
        call = await continuation(details, request_iterator)
        if span is not None:
            self._ends.when_done(span, call)
        return call
