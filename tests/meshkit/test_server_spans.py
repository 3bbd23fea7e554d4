"""Server spans: with traces on, each call a meshkit server handles is a span continuing
the caller's traceparent, and the handler runs in the span's context; the mesh's plumbing
is no span (a real grpc.aio server on port 0, with a recording recorder)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.errors import NotFound
from meshkit.health import HealthServicer
from meshkit.interceptors import MeshInterceptor
from meshkit.spans import SpanKind
from meshkit.tracing import current_trace, new_trace
from tests.support.spans import Recorder

SERVICE = "test.Traced"


def handler() -> grpc.GenericRpcHandler:
    def raw(value: bytes) -> bytes:
        return value

    async def current(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        trace = current_trace()
        return trace.traceparent.encode() if trace is not None else b""

    async def missing(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        raise NotFound("no such thing", reason="NOT_FOUND")

    async def broken(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        raise RuntimeError("a bug")

    handlers = {
        "Current": grpc.unary_unary_rpc_method_handler(current, raw, raw),
        "Missing": grpc.unary_unary_rpc_method_handler(missing, raw, raw),
        "Broken": grpc.unary_unary_rpc_method_handler(broken, raw, raw),
    }
    return grpc.method_handlers_generic_handler(SERVICE, handlers)


@pytest.fixture
async def traced_server() -> AsyncIterator[tuple[grpc.aio.Channel, Recorder]]:
    recorder = Recorder()
    server = grpc.aio.server(interceptors=[MeshInterceptor("test.plugmesh", spans=recorder)])
    server.add_generic_rpc_handlers((handler(),))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    yield channel, recorder
    await channel.close()
    await server.stop(0)


def unary(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """The bytes-level callable of a method of the test service."""
    return channel.unary_unary(f"/{SERVICE}/{name}")


async def test_a_call_is_a_server_span_of_the_callers_trace_and_the_handlers_context(
    traced_server: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = traced_server
    caller = new_trace()

    answer = await unary(channel, "Current")(b"", metadata=tuple(caller.headers().items()))

    (span,) = recorder.started
    assert (span.kind, span.name, span.parent, span.remote) == (
        SpanKind.SERVER,
        f"{SERVICE}/Current",
        caller,
        True,
    )
    assert answer.decode() == span.trace.traceparent
    assert span.attributes["rpc.service"] == SERVICE
    assert span.error is None


async def test_a_call_without_traceparent_is_the_root_of_a_trace(
    traced_server: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = traced_server

    await unary(channel, "Current")(b"")

    (span,) = recorder.started
    assert span.parent is None


@pytest.mark.parametrize(
    ("method", "error"),
    [
        pytest.param("Missing", None, id="the-callers-doing-is-no-failure"),
        pytest.param("Broken", "INTERNAL", id="a-bug-fails-the-span"),
    ],
)
async def test_a_span_fails_only_for_the_servers_own_errors(
    traced_server: tuple[grpc.aio.Channel, Recorder], method: str, error: str | None
) -> None:
    channel, recorder = traced_server

    with pytest.raises(grpc.aio.AioRpcError):
        await unary(channel, method)(b"")

    (span,) = recorder.started
    assert span.ended
    assert span.error == error


async def test_health_checks_are_no_spans(
    traced_server: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = traced_server
    stub: Any = health_pb2_grpc.HealthStub(channel)

    await stub.Check(health_pb2.HealthCheckRequest(), metadata=tuple(new_trace().headers().items()))

    assert recorder.started == []
