"""A request that is not valid protobuf is INVALID_ARGUMENT (reason MALFORMED_REQUEST), not
UNKNOWN from grpc's deserializer: at a plugin, through the ingress, for every
cardinality, and at the gateway's own health and reflection services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from gateway.app import Gateway
from meshkit.errors import error_info
from tests.gateway.conftest import StartEcho, serving_instances
from tests.gateway.echo import SERVICE, EchoPlugin, EchoRequest

pytestmark = pytest.mark.timeout(60)

#: A field 1 (length-delimited) whose length runs past the end of the message.
TRUNCATED = b"\x0a\x05ab"


@pytest.fixture
async def echo(gateway: Gateway, start_echo: StartEcho) -> EchoPlugin:
    plugin = await start_echo()
    await serving_instances(gateway.catalog, "echo", 1)
    return plugin


async def single(_: Any) -> AsyncIterator[bytes]:
    yield TRUNCATED


async def call(channel: grpc.aio.Channel, path: str, streaming: tuple[bool, bool]) -> None:
    """Send ``TRUNCATED`` to ``path`` and read the whole answer."""
    kind = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[streaming]
    multicallable: Any = kind(path)
    request = single(None) if streaming[0] else TRUNCATED
    if streaming[1]:
        async for _ in multicallable(request, timeout=5):
            pass
    else:
        await multicallable(request, timeout=5)


@pytest.mark.parametrize("via", ["plugin", "ingress"])
@pytest.mark.parametrize(
    ("method", "streaming"),
    [
        ("Echo", (False, False)),
        ("Stream", (False, True)),
        ("Collect", (True, False)),
        ("Chat", (True, True)),
    ],
    ids=["unary", "server-stream", "client-stream", "bidi"],
)
async def test_a_malformed_request_is_invalid_argument(
    gateway: Gateway, echo: EchoPlugin, via: str, method: str, streaming: tuple[bool, bool]
) -> None:
    target = echo.server.address if via == "plugin" else gateway.grpc_address
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(channel, f"/{SERVICE}/{method}", streaming)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid test.echo.v1.EchoRequest" in (raised.value.details() or "")
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == "MALFORMED_REQUEST"


@pytest.mark.parametrize(
    ("path", "streaming"),
    [
        ("/grpc.health.v1.Health/Check", (False, False)),
        ("/grpc.health.v1.Health/Watch", (False, True)),
        ("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", (True, True)),
    ],
    ids=["health-check", "health-watch", "reflection"],
)
async def test_the_gateways_own_services_answer_malformed_requests_with_invalid_argument(
    gateway: Gateway, path: str, streaming: tuple[bool, bool]
) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call(channel, path, streaming)

        # Still serving well-formed calls afterwards.
        check: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/grpc.health.v1.Health/Check"
        )
        await check(b"", timeout=5)

    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_valid_request_still_reaches_the_plugin(gateway: Gateway, echo: EchoPlugin) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        echo_call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            f"/{SERVICE}/Echo"
        )
        reply = await echo_call(EchoRequest(message="hi").SerializeToString(), timeout=5)

    assert reply
