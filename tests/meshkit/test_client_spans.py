"""Client spans: a call that carries a trace is a span between the caller and the callee;
a call that carries none goes out unchanged (a real grpc.aio server on port 0)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from meshkit.client_spans import client_interceptors
from meshkit.spans import SpanKind
from meshkit.tracing import TraceContext, new_trace
from tests.support.spans import Recorder
from tests.support.waiting import eventually

SERVICE = "test.Echo"


class Echo:
    """Answers with the traceparent it got; ``Fail`` fails with NOT_FOUND."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def handler(self) -> grpc.GenericRpcHandler:
        def raw(value: bytes) -> bytes:
            return value

        async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            return self._traceparent(context).encode()

        async def fail(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
            raise AssertionError("abort raises")

        async def stream(
            request: bytes, context: grpc.aio.ServicerContext[Any, Any]
        ) -> AsyncIterator[bytes]:
            for _ in range(2):
                yield self._traceparent(context).encode()

        handlers = {
            "Echo": grpc.unary_unary_rpc_method_handler(echo, raw, raw),
            "Fail": grpc.unary_unary_rpc_method_handler(fail, raw, raw),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, raw, raw),
        }
        return grpc.method_handlers_generic_handler(SERVICE, handlers)

    def _traceparent(self, context: grpc.aio.ServicerContext[Any, Any]) -> str:
        found = dict(context.invocation_metadata() or ()).get("traceparent", "")
        return found if isinstance(found, str) else ""


def unary(channel: grpc.aio.Channel, name: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
    """The bytes-level callable of a unary method of the echo service."""
    return channel.unary_unary(f"/{SERVICE}/{name}")


@pytest.fixture
async def channel_to_echo() -> AsyncIterator[tuple[grpc.aio.Channel, Recorder]]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((Echo().handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    recorder = Recorder()
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{port}", interceptors=client_interceptors(recorder)
    )
    yield channel, recorder
    await channel.close()
    await server.stop(0)


async def test_a_traced_call_is_a_client_span_whose_context_the_callee_gets(
    channel_to_echo: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = channel_to_echo
    caller = new_trace()

    answer = await unary(channel, "Echo")(b"", metadata=tuple(caller.headers().items()))

    (span,) = recorder.started
    assert (span.kind, span.name, span.parent, span.remote) == (
        SpanKind.CLIENT,
        f"{SERVICE}/Echo",
        caller,
        False,
    )
    assert answer.decode() == span.trace.traceparent
    assert span.ended
    assert span.error is None
    assert span.attributes["rpc.grpc.status_code"] == 0


async def test_a_failed_call_fails_its_span_and_its_caller_gets_the_error(
    channel_to_echo: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = channel_to_echo

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await unary(channel, "Fail")(b"", metadata=tuple(new_trace().headers().items()))

    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    (span,) = recorder.started
    assert span.error == "NOT_FOUND"
    assert span.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]


async def test_a_stream_is_a_span_ended_with_its_status(
    channel_to_echo: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = channel_to_echo

    stream: grpc.aio.UnaryStreamMultiCallable[bytes, bytes] = channel.unary_stream(
        f"/{SERVICE}/Stream"
    )
    call = stream(b"", metadata=tuple(new_trace().headers().items()))
    answers = [message async for message in call]

    (span,) = recorder.started
    assert {answer.decode() for answer in answers} == {span.trace.traceparent}

    async def ended() -> bool | None:
        return span.ended or None

    await eventually(ended, what="the stream's span ended")
    assert span.error is None


async def test_a_call_without_a_trace_is_no_span_and_goes_out_unchanged(
    channel_to_echo: tuple[grpc.aio.Channel, Recorder],
) -> None:
    channel, recorder = channel_to_echo

    answer = await unary(channel, "Echo")(b"")

    assert answer == b""
    assert recorder.started == []
    await asyncio.sleep(0)


def test_with_traces_off_a_channel_has_no_interceptors() -> None:
    assert client_interceptors(None) == ()
    assert TraceContext.from_headers({}) is None
