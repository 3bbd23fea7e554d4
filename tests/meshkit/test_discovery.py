"""Calling services by name through the toolkit's discovery: a real registry, real plugins."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from meshkit.config import MeshConfig
from meshkit.discovery import Discovery
from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY
from meshkit.registration import Backoff
from meshkit.server import PluginServer, Servicer
from meshkit.tracing import new_trace
from registry.app import RegistryServer
from tests.gateway import conftest as _gateway_fixtures
from tests.gateway.conftest import StartEcho
from tests.gateway.echo import DESCRIPTOR, SERVICE, EchoPlugin, EchoRequest, EchoResponse
from tests.support.waiting import eventually

# A real registry and echo plugins registered with it, as the gateway's tests have them.
registry_config = _gateway_fixtures.registry_config
start_registry = _gateway_fixtures.start_registry
registry = _gateway_fixtures.registry
start_echo = _gateway_fixtures.start_echo


class EchoStub:
    """A stub of the echo service over any channel, as generated code builds one."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        def path(method: str) -> str:
            return f"/{SERVICE}/{method}"

        ser, de = EchoRequest.SerializeToString, EchoResponse.FromString
        self.Echo = channel.unary_unary(path("Echo"), ser, de, _registered_method=True)  # type: ignore[call-arg]  # generated stubs pass it; types-grpcio omits it
        self.Mutate = channel.unary_unary(path("Mutate"), ser, de)
        self.Stream = channel.unary_stream(path("Stream"), ser, de)
        self.Collect = channel.stream_unary(path("Collect"), ser, de)
        self.Chat = channel.stream_stream(path("Chat"), ser, de)


@pytest.fixture
async def discovery(registry: RegistryServer) -> AsyncIterator[Discovery]:
    """Discovery following ``registry``, synced."""
    found = Discovery(
        registry.address,
        backoff=Backoff(initial_seconds=0.05, maximum_seconds=0.2),
        grace_seconds=0.2,
    )
    await found.start()
    await found.wait_ready(timeout_seconds=5)
    yield found
    await found.close()


async def serving(discovery: Discovery, count: int) -> tuple[str, ...]:
    """The echo addresses, once ``count`` of them serve."""

    async def enough() -> tuple[str, ...] | None:
        addresses = discovery.serving(SERVICE)
        return addresses if len(addresses) == count else None

    return await eventually(enough, timeout_seconds=10, what=f"{count} echo instances serving")


async def test_calls_are_balanced_over_every_serving_instance(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    first, second = await start_echo(), await start_echo()
    await serving(discovery, 2)
    stub = EchoStub(discovery.channel(SERVICE))

    replies = [await stub.Echo(EchoRequest(message=f"m{i}"), timeout=5) for i in range(10)]

    assert Counter(r.served_by for r in replies) == {first.address: 5, second.address: 5}
    assert [r.message for r in replies] == [f"m{i}" for i in range(10)]


async def test_an_instance_that_joins_gets_calls_and_one_that_leaves_gets_none(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    first = await start_echo()
    await serving(discovery, 1)
    stub = EchoStub(discovery.channel(SERVICE))
    assert (await stub.Echo(EchoRequest(), timeout=5)).served_by == first.address

    second = await start_echo()
    await serving(discovery, 2)
    both = {(await stub.Echo(EchoRequest(), timeout=5)).served_by for _ in range(4)}
    assert both == {first.address, second.address}

    await first.stop()
    assert await serving(discovery, 1) == (second.address,)
    after = {(await stub.Echo(EchoRequest(), timeout=5)).served_by for _ in range(4)}
    assert after == {second.address}


async def test_with_no_serving_instance_a_call_is_unavailable_naming_the_service(
    discovery: Discovery,
) -> None:
    stub = EchoStub(discovery.channel(SERVICE))

    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Echo(EchoRequest(), timeout=5)

    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert SERVICE in (failure.value.details() or "")


async def broken_and_healthy(
    start_echo: StartEcho, discovery: Discovery
) -> tuple[EchoPlugin, EchoPlugin, EchoStub]:
    """Two echo instances, the first failing every call with UNAVAILABLE, and a stub."""
    broken, healthy = await start_echo(), await start_echo()
    broken.servicer.unavailable = True
    await serving(discovery, 2)
    return broken, healthy, EchoStub(discovery.channel(SERVICE))


async def test_a_safe_call_that_is_unavailable_is_made_again_on_another_instance(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    broken, healthy, stub = await broken_and_healthy(start_echo, discovery)

    replies = [await stub.Echo(EchoRequest(), timeout=5) for _ in range(4)]

    assert {r.served_by for r in replies} == {healthy.address}
    assert broken.servicer.calls["Echo"] == 2, "half the calls went there first"


async def test_an_unsafe_call_that_is_unavailable_is_not_made_again(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    broken, healthy, stub = await broken_and_healthy(start_echo, discovery)

    codes = []
    for _ in range(4):
        try:
            await stub.Mutate(EchoRequest(), timeout=5)
            codes.append(grpc.StatusCode.OK)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())

    assert sorted(code.name for code in codes) == ["OK", "OK", "UNAVAILABLE", "UNAVAILABLE"]
    assert (broken.servicer.calls["Mutate"], healthy.servicer.calls["Mutate"]) == (2, 2)


async def test_streaming_calls_of_every_cardinality_go_through(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    echo = await start_echo()
    await serving(discovery, 1)
    stub = EchoStub(discovery.channel(SERVICE))

    streamed = [r.index async for r in stub.Stream(EchoRequest(count=3), timeout=5)]

    async def parts() -> AsyncIterator[Any]:
        for part in ("a", "b", "c"):
            yield EchoRequest(message=part)

    collected = await stub.Collect(parts(), timeout=5)
    chatted = [r.message async for r in stub.Chat(parts(), timeout=5)]

    assert streamed == [0, 1, 2]
    assert collected.message == "a+b+c"
    assert chatted == ["a", "b", "c"]
    assert echo.servicer.calls == {"Stream": 3, "Collect": 1, "Chat": 3}


class Relay:
    """A handler that calls the echo service through discovery, as one plugin calls another."""

    def __init__(self, discovery: Discovery) -> None:
        self._stub = EchoStub(discovery.channel(SERVICE))

    async def Echo(self, request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        return await self._stub.Echo(request)


def _add_relay(relay: Relay, server: grpc.aio.Server) -> None:
    handler = grpc.unary_unary_rpc_method_handler(
        relay.Echo,
        request_deserializer=EchoRequest.FromString,
        response_serializer=EchoResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Echo": handler}),)
    )


@pytest.fixture
async def relay(discovery: Discovery) -> AsyncIterator[PluginServer]:
    """A toolkit server (not registered) whose Echo calls the echo service by name."""
    server = PluginServer(
        "relay",
        [Servicer(DESCRIPTOR, _add_relay, Relay(discovery))],
        address="127.0.0.1:0",
        config=MeshConfig.from_env({}),
        register=False,
    )
    await server.start()
    yield server
    await server.stop(0)


async def test_a_handler_s_call_carries_its_trace_its_caller_s_identity_and_deadline(
    start_echo: StartEcho, discovery: Discovery, relay: PluginServer
) -> None:
    echo = await start_echo()
    await serving(discovery, 1)
    trace = new_trace()
    identity = ((IDENTITY_KEY, '{"kind":"user","sub":"u-1"}'), (SIGNATURE_KEY, "ab" * 32))

    async with grpc.aio.insecure_channel(relay.address) as channel:
        reply = await EchoStub(channel).Echo(
            EchoRequest(message="hi"),
            timeout=3,
            metadata=(*trace.headers().items(), *identity),
        )

    received = dict(entry.split("=", 1) for entry in reply.metadata)
    assert reply.served_by == echo.address
    assert received[IDENTITY_KEY] == identity[0][1]
    assert received[SIGNATURE_KEY] == identity[1][1]
    sent = received["traceparent"]
    assert sent[3:35] == trace.trace_id, "the same trace"
    assert sent[36:52] != trace.span_id, "as a child of the relay's span, not of the client's"
    [remaining] = echo.servicer.time_remaining
    # grpc-timeout travels rounded (to milliseconds or coarser): allow for that.
    assert remaining is not None, "the client's deadline went along"
    assert 0 < remaining <= 3.05


async def test_a_call_made_outside_any_handler_carries_only_what_it_was_given(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    echo = await start_echo()
    await serving(discovery, 1)

    reply = await EchoStub(discovery.channel(SERVICE)).Echo(
        EchoRequest(), metadata=(("x-mine", "1"),)
    )

    received = [entry.split("=", 1)[0] for entry in reply.metadata]
    assert "x-mine" in received
    assert IDENTITY_KEY not in received
    assert "traceparent" not in received
    assert echo.servicer.time_remaining == [None]


async def test_after_close_a_call_is_unavailable_naming_the_reason(
    start_echo: StartEcho, discovery: Discovery
) -> None:
    await start_echo()
    await serving(discovery, 1)
    stub = EchoStub(discovery.channel(SERVICE))
    await discovery.close()

    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await stub.Echo(EchoRequest(), timeout=5)

    assert failure.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "closed" in (failure.value.details() or "")
