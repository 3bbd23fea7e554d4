"""The gateway's gRPC port: a proxy for every registered service, plus health and reflection.

Any method of any service in the catalog is proxied by its full name without decoding
its messages (bytes in, bytes out); the cardinality comes from the method's descriptor.
What crosses the proxy:

- request metadata, filtered by :func:`gateway.metadata.request_metadata` (no hop-by-hop,
  reserved or client-sent identity headers);
- the deadline: the client's, or ``default_deadline_seconds`` for calls with a single
  response (a response stream without a client deadline stays open, as a watch must);
- cancellation, both ways;
- the upstream's initial and trailing metadata, status code and message, and the
  ``grpc-status-details-bin`` trailer, so ``google.rpc.Status`` details survive;
- the trace: each call is a span of the caller's trace (or of a new one), and its
  ``traceparent`` goes upstream (:class:`meshkit.interceptors.MeshInterceptor`, which
  also counts the calls by method, type and status code when given metrics: the type,
  ``grpc_type``, is that of the handler, which :class:`ProxyHandler` picks from the
  method's descriptor);
- an access line per call when the access log is on (:mod:`gateway.access_log`).

With a ``guard`` (the gateway passes :class:`gateway.auth.GrpcGuard`), every proxied
call is first authenticated and authorized by its method's declared access (bearer
credential in the ``authorization`` metadata); a refused call ends there, an accepted
one goes upstream without ``authorization`` and with the caller's signed identity.

A method no registered service serves gets UNIMPLEMENTED naming it (UNAVAILABLE while
the catalog has not synced with the registry yet). The gateway's own
``grpc.health.v1.Health`` and server reflection (:mod:`gateway.reflection`) are served
by the same server and take precedence over the proxy.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from functools import partial
from typing import Any, NoReturn

import grpc
from google.protobuf import descriptor
from grpc_health.v1 import health_pb2_grpc

from gateway.access_log import AccessLog
from gateway.auth.guard import verified_caller
from gateway.catalog import Catalog
from gateway.front_door import FrontDoorTls
from gateway.health import GatewayHealth
from gateway.metadata import Metadata, request_metadata, response_metadata
from gateway.model import Method
from gateway.reflection import AggregatedReflection, add_reflection
from gateway.upstream import ResponseStream, UnaryResponse, Upstreams
from meshkit.grpc_types import Context
from meshkit.interceptors import MeshInterceptor
from meshkit.malformed import MalformedRequestInterceptor
from meshkit.metrics import RpcMetrics
from meshkit.server import AddressInUseError
from meshkit.spans import SpanRecorder
from meshkit.tls import rotating_server_credentials
from meshkit.tracing import TRACEPARENT, TRACESTATE, current_trace

log = logging.getLogger(__name__)

Handler = Any  # grpc.RpcMethodHandler is generic only in the stubs
#: Checks a call before it is proxied; returns the metadata to add, aborts when refused.
Guard = Callable[[descriptor.MethodDescriptor, Context], Awaitable[Metadata]]


class ProxyHandler(grpc.GenericRpcHandler):
    """Routes every call by its method name to an upstream instance."""

    def __init__(
        self,
        catalog: Catalog,
        upstreams: Upstreams,
        *,
        default_deadline_seconds: float,
        guard: Guard | None = None,
    ) -> None:
        self._catalog = catalog
        self._upstreams = upstreams
        self._default_deadline = default_deadline_seconds
        self._guard = guard

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Handler:
        name = handler_call_details.method
        method = self._catalog.method(name)
        # Handlers must be coroutine or async generator functions (partials of them):
        # grpc.aio runs any other callable in a thread.
        if method is None:
            ready = self._catalog.ready
            return grpc.stream_stream_rpc_method_handler(partial(_unknown, name, ready))
        if method.client_streaming and method.server_streaming:
            return grpc.stream_stream_rpc_method_handler(partial(_bidi, self, method))
        if method.client_streaming:
            return grpc.stream_unary_rpc_method_handler(partial(_client_stream, self, method))
        if method.server_streaming:
            return grpc.unary_stream_rpc_method_handler(partial(_server_stream, self, method))
        return grpc.unary_unary_rpc_method_handler(partial(_unary, self, method))

    def timeout(self, context: Context, *, single_response: bool) -> float | None:
        """The deadline left for the upstream call, in seconds."""
        remaining = context.time_remaining()
        if remaining is not None:
            return max(remaining, 0.0)
        return self._default_deadline if single_response else None

    @property
    def upstreams(self) -> Upstreams:
        """Where calls go."""
        return self._upstreams

    async def metadata(self, method: Method, context: Context) -> Metadata:
        """The metadata sent upstream; the guard may refuse the call (it aborts)."""
        forwarded = request_metadata(context.invocation_metadata())
        trace = current_trace()
        if trace is not None:
            forwarded = (
                *(m for m in forwarded if m[0] not in (TRACEPARENT, TRACESTATE)),
                *trace.headers().items(),
            )
        if self._guard is None:
            return forwarded
        identity = await self._guard(method.descriptor, context)
        return (*(m for m in forwarded if m[0] != "authorization"), *identity)


async def _unknown(
    name: str, ready: bool, requests: AsyncIterator[bytes], context: Context
) -> None:
    if not ready:
        await context.abort(
            grpc.StatusCode.UNAVAILABLE,
            f"the gateway has not received the registry's services yet; retry {name}",
        )
    await context.abort(
        grpc.StatusCode.UNIMPLEMENTED, f"method {name} is not served by any registered service"
    )


async def _unary(proxy: ProxyHandler, method: Method, request: bytes, context: Context) -> bytes:
    try:
        reply = await proxy.upstreams.unary(
            method,
            request,
            timeout_seconds=proxy.timeout(context, single_response=True),
            metadata=await proxy.metadata(method, context),
        )
    except grpc.aio.AioRpcError as exc:
        await _abort(context, exc)
    return await _answer(context, reply)


async def _client_stream(
    proxy: ProxyHandler, method: Method, requests: AsyncIterator[bytes], context: Context
) -> bytes:
    try:
        reply = await proxy.upstreams.client_stream(
            method,
            requests,
            timeout_seconds=proxy.timeout(context, single_response=True),
            metadata=await proxy.metadata(method, context),
        )
    except grpc.aio.AioRpcError as exc:
        await _abort(context, exc)
    return await _answer(context, reply)


async def _server_stream(
    proxy: ProxyHandler, method: Method, request: bytes, context: Context
) -> AsyncIterator[bytes]:
    stream = proxy.upstreams.server_stream(
        method,
        request,
        timeout_seconds=proxy.timeout(context, single_response=False),
        metadata=await proxy.metadata(method, context),
    )
    async for message in _relay(stream, context):
        yield message


async def _bidi(
    proxy: ProxyHandler, method: Method, requests: AsyncIterator[bytes], context: Context
) -> AsyncIterator[bytes]:
    stream = proxy.upstreams.bidi_stream(
        method,
        requests,
        timeout_seconds=proxy.timeout(context, single_response=False),
        metadata=await proxy.metadata(method, context),
    )
    async for message in _relay(stream, context):
        yield message


async def _relay(stream: ResponseStream, context: Context) -> AsyncIterator[bytes]:
    headers_sent = False
    async with stream:
        try:
            async for message in stream:
                if not headers_sent:
                    headers_sent = True
                    await _send_headers(context, await stream.initial_metadata())
                yield message
            if not headers_sent:
                await _send_headers(context, await stream.initial_metadata())
            trailers = response_metadata(await stream.trailing_metadata())
            if trailers:
                context.set_trailing_metadata(trailers)
        except grpc.aio.AioRpcError as exc:
            await _abort(context, exc, headers_sent=headers_sent)


async def _answer(context: Context, reply: UnaryResponse) -> bytes:
    await _send_headers(context, reply.initial_metadata)
    trailers = response_metadata(reply.trailing_metadata)
    if trailers:
        context.set_trailing_metadata(trailers)
    return reply.body


async def _send_headers(context: Context, upstream: Metadata) -> None:
    # Sent only when there is something to relay: an explicit send costs a batch of its
    # own, while gRPC sends empty headers with the first message anyway.
    headers = response_metadata(upstream)
    if headers:
        await context.send_initial_metadata(headers)


async def _abort(
    context: Context, exc: grpc.aio.AioRpcError, *, headers_sent: bool = False
) -> NoReturn:
    """End the call as the upstream ended it: code, message, initial and trailing metadata."""
    if not headers_sent:
        await _send_headers(context, tuple(exc.initial_metadata() or ()))
    await context.abort(exc.code(), exc.details() or "", response_metadata(exc.trailing_metadata()))


def _log_call(
    access_log: AccessLog,
    method: str,
    code: str,
    seconds: float,
    metadata: Iterable[tuple[str, str | bytes]],
) -> None:
    request_id = next((v for k, v in metadata if k == "x-request-id" and isinstance(v, str)), "")
    access_log.grpc(
        method=method,
        code=code,
        seconds=seconds,
        trace=current_trace(),
        request_id=request_id,
        caller=verified_caller(),
    )


class IngressServer:
    """The gRPC server of the gateway: proxy, aggregated reflection and health.

    Args:
        catalog: What is routable.
        upstreams: How calls reach the instances.
        health: The gateway's health servicer (see :class:`gateway.health.HealthSync`).
        address: Where to listen, ``host:port``; port 0 picks a free port.
        default_deadline_seconds: Deadline of single-response calls without one.
        max_message_bytes: Largest request message accepted.
        guard: Authenticates and authorizes each proxied call; None proxies every call.
        metrics: Where calls are counted; a method no registered service has counts as
            service and method ``unknown``, type ``bidi_stream`` (its handler reads and
            writes a stream, as nothing tells its cardinality).
        access_log: Where each call gets its line (:mod:`gateway.access_log`).
        spans: Where each call's server span goes (traces on); its upstream call is a
            client span of it (:class:`gateway.upstream.Upstreams`).
        tls: The front door's certificate; plaintext without one.
    """

    def __init__(
        self,
        catalog: Catalog,
        upstreams: Upstreams,
        health: GatewayHealth,
        *,
        address: str,
        default_deadline_seconds: float,
        max_message_bytes: int,
        guard: Guard | None = None,
        metrics: RpcMetrics | None = None,
        access_log: AccessLog | None = None,
        spans: SpanRecorder | None = None,
        tls: FrontDoorTls | None = None,
    ) -> None:
        self._listen = address
        self._tls = tls or FrontDoorTls()
        self._health = health
        on_call = None
        if access_log is not None and access_log.enabled:
            on_call = partial(_log_call, access_log)
        self._interceptor = MeshInterceptor(
            "gateway.plugmesh", metrics, on_call=on_call, spans=spans
        )
        self._reflection = AggregatedReflection(catalog)
        self._proxy = ProxyHandler(
            catalog, upstreams, default_deadline_seconds=default_deadline_seconds, guard=guard
        )
        self._options: tuple[tuple[str, Any], ...] = (
            # No SO_REUSEPORT: a second gateway on a taken port must fail, not share it.
            ("grpc.so_reuseport", 0),
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", -1),
        )
        self._server: grpc.aio.Server | None = None
        self._port = 0
        self._stopped = False

    @property
    def port(self) -> int:
        """The port it listens on; 0 before :meth:`start`."""
        return self._port

    async def start(self) -> None:
        """Bind and serve. Safe to call twice.

        Raises:
            AddressInUseError: the address cannot be bound.
        """
        if self._server is not None or self._stopped:
            return
        # The malformed-request interceptor covers the gateway's own health and
        # reflection; proxied calls are bytes, decoded only by the plugin that serves them.
        server = grpc.aio.server(
            interceptors=[self._interceptor, MalformedRequestInterceptor("gateway.plugmesh")],
            options=self._options,
        )
        health_pb2_grpc.add_HealthServicer_to_server(self._health, server)
        add_reflection(server, self._reflection)
        server.add_generic_rpc_handlers((self._proxy,))  # after the own services: they win
        try:
            if self._tls.cert_file is not None and self._tls.key_file is not None:
                credentials = rotating_server_credentials(
                    self._tls.cert_file, self._tls.key_file, None
                )
                self._port = server.add_secure_port(self._listen, credentials)
            else:
                self._port = server.add_insecure_port(self._listen)
        except RuntimeError as exc:
            raise AddressInUseError(f"gateway cannot listen on {self._listen}: {exc}") from exc
        await server.start()
        self._server = server
        log.info("gRPC ingress serving", extra={"address": self._listen, "port": self._port})

    async def stop(self, grace_seconds: float | None) -> None:
        """Stop serving, letting calls in flight finish within the grace. Safe to call twice."""
        self._stopped = True
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_seconds)
