"""The server interceptor of every meshkit gRPC server: trace context, errors, metrics.

For each call it wraps the handler once, so that the handler:

- runs in the caller's trace: a new span continuing the ``traceparent`` metadata, or a
  new trace when there is none (:mod:`meshkit.tracing`), so log lines and
  the events the call publishes carry its trace id;
- knows the caller's signed identity and deadline (:mod:`meshkit.inbound`), which the
  calls it makes through :mod:`meshkit.discovery` pass on;
- has its exceptions mapped at one boundary: a :class:`MeshError` becomes its
  ``google.rpc.Status``, any other exception INTERNAL (and a log line);
- is counted and timed by method, type (unary, client_stream, server_stream, bidi_stream)
  and status code (:class:`meshkit.metrics.RpcMetrics`);
- with traces on (``spans``), is a server span (:mod:`meshkit.spans`), the child of the
  caller's ``traceparent`` or the root of a new trace, whose context is the call's; the
  mesh's plumbing (health, reflection, lease renewals, the registry watch) is no span.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeAlias

import grpc

from meshkit._rpc_spans import UNTRACED, end_rpc_span, metadata_trace, start_rpc_span
from meshkit.errors import MeshError, abort, internal_status, to_status
from meshkit.grpc_types import Context
from meshkit.inbound import InboundCall, enter_call, leave_call
from meshkit.metrics import RpcMetrics, RpcSeries, grpc_type
from meshkit.spans import OpenSpan, SpanKind, SpanRecorder
from meshkit.tracing import TRACEPARENT, TRACESTATE, TraceContext, continue_trace, use_trace

log = logging.getLogger(__name__)

# A string: grpc.RpcMethodHandler is generic only in the type stubs.
Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"

_OK = "OK"


#: Told of each call once it ended: ``(full method, status code name, seconds,
#: invocation metadata)``, in the call's trace and context (e.g. for an access log).
CallObserver = Callable[[str, str, float, Iterable[tuple[str, str | bytes]]], None]


class MeshInterceptor(grpc.aio.ServerInterceptor):
    """Trace context, error mapping and metrics for every call of a server.

    Args:
        domain: The ``google.rpc.ErrorInfo`` domain of the errors, ``<service>.plugmesh``.
        metrics: Where calls are counted; not counted when ``None``.
        on_call: Told of each call once it ended; must not raise.
        spans: Where the calls' spans go; none when ``None`` (traces off).
    """

    def __init__(
        self,
        domain: str,
        metrics: RpcMetrics | None = None,
        *,
        on_call: CallObserver | None = None,
        spans: SpanRecorder | None = None,
    ) -> None:
        self._domain = domain
        self._metrics = metrics
        self._on_call = on_call
        self._spans = spans

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        method = handler_call_details.method
        series = None
        if self._metrics is not None:
            kind = grpc_type(handler.request_streaming, handler.response_streaming)
            series = self._metrics.series(method, kind)
        spans = self._spans
        if spans is not None and method.startswith(UNTRACED):
            spans = None
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._unary(handler.unary_unary, method, series, spans),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._unary(handler.stream_unary, method, series, spans),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._streaming(handler.unary_stream, method, series, spans),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._streaming(handler.stream_stream, method, series, spans),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _unary(
        self,
        behavior: Callable[..., Any],
        method: str,
        series: RpcSeries | None,
        spans: SpanRecorder | None,
    ) -> Callable[..., Any]:
        async def call(request: Any, context: Context) -> Any:
            metadata = context.invocation_metadata() or ()
            span = None if spans is None else _server_span(spans, method, metadata)
            with use_trace(_trace_of(metadata) if span is None else span.trace):
                inbound = enter_call(InboundCall.of(metadata, context.time_remaining()))
                if series is not None:
                    series.start()
                started = time.perf_counter()
                ended = _OK
                try:
                    return await behavior(request, context)
                except asyncio.CancelledError:
                    ended = "CANCELLED"
                    raise
                except Exception as exc:
                    ended = "UNKNOWN"
                    await self._abort(exc, context, method)
                finally:
                    self._ended(method, _code(context, ended), started, series, metadata, span)
                    leave_call(inbound)

        return call

    def _streaming(
        self,
        behavior: Callable[..., Any],
        method: str,
        series: RpcSeries | None,
        spans: SpanRecorder | None,
    ) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):
            # Written with context.write(): a coroutine, not a generator.
            return self._unary(behavior, method, series, spans)

        async def stream(request: Any, context: Context) -> Any:
            # Set around each step, not once: an async generator's steps may run in
            # different contexts, and a token must be reset in the context that set it.
            metadata = context.invocation_metadata() or ()
            span = None if spans is None else _server_span(spans, method, metadata)
            trace = _trace_of(metadata) if span is None else span.trace
            inbound = InboundCall.of(metadata, context.time_remaining())
            if series is not None:
                series.start()
            started = time.perf_counter()
            ended = _OK
            try:
                responses: AsyncIterator[Any] = behavior(request, context)
                while True:
                    with use_trace(trace):
                        entered = enter_call(inbound)
                        try:
                            response = await anext(responses)
                        except StopAsyncIteration:
                            break
                        finally:
                            leave_call(entered)
                    yield response
            except (asyncio.CancelledError, GeneratorExit):
                ended = "CANCELLED"
                raise
            except Exception as exc:
                ended = "UNKNOWN"
                with use_trace(trace):
                    await self._abort(exc, context, method)
            finally:
                with use_trace(trace):
                    self._ended(method, _code(context, ended), started, series, metadata, span)

        return stream

    def _ended(
        self,
        method: str,
        code: str,
        started: float,
        series: RpcSeries | None,
        metadata: Iterable[tuple[str, str | bytes]],
        span: OpenSpan | None,
    ) -> None:
        seconds = time.perf_counter() - started
        if series is not None:
            series.observe(code, seconds)
        if span is not None:
            end_rpc_span(span, code, SpanKind.SERVER)
        if self._on_call is not None:
            self._on_call(method, code, seconds, metadata)

    async def _abort(self, exc: Exception, context: Context, method: str) -> None:
        if isinstance(exc, grpc.aio.AbortError):
            raise exc
        if isinstance(exc, MeshError):
            status = to_status(exc, self._domain)
        else:
            log.exception("unexpected error in %s", method, extra={"method": method})
            status = internal_status(self._domain)
        await abort(context, status)


def _trace_of(metadata: Iterable[tuple[str, str | bytes]]) -> TraceContext:
    traceparent: str | None = None
    tracestate: str | None = None
    for key, value in metadata:
        if key == TRACEPARENT and isinstance(value, str):
            traceparent = value
        elif key == TRACESTATE and isinstance(value, str):
            tracestate = value
    return continue_trace(traceparent, tracestate)


def _server_span(
    spans: SpanRecorder, method: str, metadata: Iterable[tuple[str, str | bytes]]
) -> OpenSpan:
    return start_rpc_span(spans, method, SpanKind.SERVER, metadata_trace(metadata))


def _code(context: Context, ended: str) -> str:
    """The call's status code name: the one set by an abort, else how the handler ended."""
    code = context.code()
    if code is None:
        return ended
    if isinstance(code, grpc.StatusCode):
        return code.name
    return str(code)
