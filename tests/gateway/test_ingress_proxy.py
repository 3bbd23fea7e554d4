"""The gRPC ingress proxies every cardinality, with metadata, statuses and deadlines intact,
and counts each call by its type as the plugin does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.app import Gateway
from gateway.config import GatewayConfig
from meshkit.config import MeshConfig
from meshkit.errors import error_info, status_of
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.gateway.conftest import StartEcho, serving_instances
from tests.gateway.echo import SERVICE, EchoPlugin, EchoRequest, EchoResponse
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


def stub(
    channel: grpc.aio.Channel, name: str, *, streaming: tuple[bool, bool] = (False, False)
) -> Any:
    path = f"/{SERVICE}/{name}"
    serialize, parse = EchoRequest.SerializeToString, EchoResponse.FromString
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[streaming]
    return kind(path, request_serializer=serialize, response_deserializer=parse)


@pytest.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        yield channel


@pytest.fixture
async def echo(gateway: Gateway, start_echo: StartEcho) -> EchoPlugin:
    plugin = await start_echo()
    await serving_instances(gateway.catalog, "echo", 1)
    return plugin


async def test_unary_call_is_proxied_with_metadata_both_ways(
    channel: grpc.aio.Channel, echo: EchoPlugin
) -> None:
    call = stub(channel, "Echo")(
        EchoRequest(message="hi"),
        metadata=(
            ("x-request-id", "r1"),
            ("x-plugmesh-identity", "forged"),
            ("x-plugmesh-user-id", "forged"),
        ),
        timeout=5,
    )
    reply = await call

    assert (reply.message, reply.served_by) == ("hi", echo.address)
    assert "x-request-id=r1" in reply.metadata
    assert not [m for m in reply.metadata if m.startswith("x-plugmesh-")]
    assert ("x-echo-initial", echo.address) in tuple(await call.initial_metadata())
    assert ("x-echo-trailing", "done") in tuple(await call.trailing_metadata())


async def test_status_details_survive_the_proxy(
    channel: grpc.aio.Channel, echo: EchoPlugin
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(channel, "Echo")(EchoRequest(fail="FAILED_PRECONDITION"), timeout=5)

    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert raised.value.details() == "failing with FAILED_PRECONDITION"
    info = error_info(raised.value)
    assert info is not None
    assert (info.reason, dict(info.metadata)) == ("ECHO_FAILED", {"fail": "FAILED_PRECONDITION"})
    assert status_of(raised.value).code == grpc.StatusCode.FAILED_PRECONDITION.value[0]


async def test_server_streaming_is_proxied(channel: grpc.aio.Channel, echo: EchoPlugin) -> None:
    call = stub(channel, "Stream", streaming=(False, True))(EchoRequest(message="s", count=3))

    replies = [reply async for reply in call]

    assert [(r.message, r.index) for r in replies] == [("s", 0), ("s", 1), ("s", 2)]
    assert await call.code() == grpc.StatusCode.OK


async def test_a_stream_failing_midway_ends_with_the_upstream_status(
    channel: grpc.aio.Channel, echo: EchoPlugin
) -> None:
    call = stub(channel, "Stream", streaming=(False, True))(EchoRequest(count=2, fail="ABORTED"))

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        async for _ in call:
            pass

    assert raised.value.code() == grpc.StatusCode.ABORTED
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == "ECHO_FAILED"


async def test_client_streaming_is_proxied(channel: grpc.aio.Channel, echo: EchoPlugin) -> None:
    async def requests() -> AsyncIterator[Any]:
        for word in ("x", "y"):
            yield EchoRequest(message=word)

    reply = await stub(channel, "Collect", streaming=(True, False))(requests(), timeout=5)

    assert reply.message == "x+y"


async def test_bidi_streaming_is_proxied_message_by_message(
    channel: grpc.aio.Channel, echo: EchoPlugin
) -> None:
    call = stub(channel, "Chat", streaming=(True, True))(timeout=10)
    answers = []
    for word in ("one", "two", "three"):
        await call.write(EchoRequest(message=word))
        answers.append((await call.read()).message)
    await call.done_writing()

    assert answers == ["one", "two", "three"]
    assert await call.code() == grpc.StatusCode.OK


async def _call_once(channel: grpc.aio.Channel, name: str, streaming: tuple[bool, bool]) -> None:
    """One call of ``name`` that ends with OK, whatever its cardinality."""

    async def requests() -> AsyncIterator[Any]:
        yield EchoRequest(message="m")

    method = stub(channel, name, streaming=streaming)
    call = (
        method(requests(), timeout=5) if streaming[0] else method(EchoRequest(count=1), timeout=5)
    )
    if streaming[1]:
        assert len([reply async for reply in call]) == 1
    else:
        await call
    assert await call.code() == grpc.StatusCode.OK


@pytest.mark.parametrize(
    ("name", "streaming", "kind"),
    [
        ("Echo", (False, False), "unary"),
        ("Collect", (True, False), "client_stream"),
        ("Stream", (False, True), "server_stream"),
        ("Chat", (True, True), "bidi_stream"),
    ],
    ids=["unary", "client_stream", "server_stream", "bidi_stream"],
)
async def test_a_proxied_call_is_counted_with_its_grpc_type_by_the_gateway_and_the_plugin(
    gateway: Gateway,
    channel: grpc.aio.Channel,
    echo: EchoPlugin,
    name: str,
    streaming: tuple[bool, bool],
    kind: str,
) -> None:
    await _call_once(channel, name, streaming)

    labels = {"grpc_type": kind, "grpc_service": SERVICE, "grpc_method": name}
    for registry in (gateway.metrics_registry, echo.server.metrics_registry):
        assert registry.get_sample_value("grpc_server_started_total", labels) == 1
        ok = {**labels, "grpc_code": "OK"}
        assert registry.get_sample_value("grpc_server_handled_total", ok) == 1
        assert registry.get_sample_value("grpc_server_handling_seconds_count", labels) == 1


async def test_deadline_exceeded_through_the_ingress(
    channel: grpc.aio.Channel, echo: EchoPlugin
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(channel, "Echo")(EchoRequest(delay_ms=3000), timeout=0.3)

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_the_default_deadline_applies_when_the_client_sets_none(
    registry: RegistryServer, start_echo: StartEcho, gateway: Gateway
) -> None:
    await start_echo()
    await serving_instances(gateway.catalog, "echo", 1)
    short = Gateway(
        GatewayConfig(
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            mcp_servers_address="127.0.0.1:0",
            default_deadline_seconds=0.3,
            mesh=gateway.config.mesh,
        ),
        register=False,
    )
    await short.start()
    try:
        assert await short.catalog.wait_ready(timeout_seconds=5)
        await serving_instances(short.catalog, "echo", 1)
        async with grpc.aio.insecure_channel(short.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub(channel, "Echo")(EchoRequest(delay_ms=3000))
    finally:
        await short.stop()

    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


async def test_an_unknown_method_is_unimplemented_naming_it(
    channel: grpc.aio.Channel, gateway: Gateway
) -> None:
    call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/nope.v1.Nothing/Call"
    )

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call(b"", timeout=5)

    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/nope.v1.Nothing/Call" in (raised.value.details() or "")


async def test_calls_before_the_first_sync_are_unavailable(tmp_path: Path) -> None:
    unsynced = Gateway(
        GatewayConfig(
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            mcp_servers_address="127.0.0.1:0",
            mesh=MeshConfig.from_env(
                {"PLUGMESH_DATA_DIR": str(tmp_path), "PLUGMESH_REGISTRY_ADDRESS": "127.0.0.1:1"}
            ),
        ),
        register=False,
    )
    await unsynced.start()
    try:
        async with grpc.aio.insecure_channel(unsynced.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub(channel, "Echo")(EchoRequest(), timeout=5)
            health: Any = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest())
    finally:
        await unsynced.stop()

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "registry" in (raised.value.details() or "")
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


async def test_no_serving_instance_is_unavailable_through_the_ingress(
    channel: grpc.aio.Channel, gateway: Gateway, echo: EchoPlugin
) -> None:
    await echo.server.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    await serving_instances(gateway.catalog, "echo", 0)

    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub(channel, "Echo")(EchoRequest(), timeout=5)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == "NO_HEALTHY_INSTANCE"


async def test_health_reports_the_gateway_and_each_proxied_service(
    channel: grpc.aio.Channel, gateway: Gateway, echo: EchoPlugin
) -> None:
    # Any: the typeshed stubs of the Health stub are sync-only.
    health: Any = health_pb2_grpc.HealthStub(channel)

    async def status(service: str) -> int | None:
        try:
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        except grpc.aio.AioRpcError as exc:
            return -1 if exc.code() == grpc.StatusCode.NOT_FOUND else None
        return int(reply.status)

    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING

    async def becomes(service: str, wanted: int) -> None:
        async def check() -> bool | None:
            return True if await status(service) == wanted else None

        await eventually(check, what=f"{service or 'the gateway'} reporting {wanted}")

    await becomes("", serving)
    await becomes(SERVICE, serving)
    await echo.server.health.set("", not_serving)
    await becomes(SERVICE, not_serving)
    await echo.stop()
    await becomes(SERVICE, -1)


async def test_the_gateway_registers_with_an_empty_contract_and_serves(
    gateway: Gateway, registry: RegistryServer, echo: EchoPlugin
) -> None:
    async with grpc.aio.insecure_channel(registry.address) as channel:
        registry_stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def serving() -> registry_pb2.Service | None:
            got = await registry_stub.GetService(registry_pb2.GetServiceRequest(service="gateway"))
            return got.service if got.service.health == registry_pb2.HEALTH_STATUS_SERVING else None

        service = await eventually(serving, what="the gateway SERVING in the registry")

    assert (list(service.grpc_services), list(service.routes)) == ([], [])
    assert [i.address for i in service.instances] == [gateway.grpc_address]


async def test_stop_is_idempotent(gateway: Gateway) -> None:
    await gateway.stop()
    await gateway.stop()

    assert gateway.catalog.connected is False
