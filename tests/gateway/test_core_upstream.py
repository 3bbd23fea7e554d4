"""Upstreams: round-robin over serving instances, safe retries, channels per instance."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest

from gateway.catalog import Catalog
from gateway.model import Method
from gateway.upstream import NoHealthyInstance, Upstreams
from meshkit.errors import error_info
from meshkit.health import NOT_SERVING, SERVING
from tests.gateway.conftest import StartEcho, serving_instances
from tests.gateway.echo import SERVICE, EchoPlugin, EchoResponse, message_bytes
from tests.support.waiting import eventually


def method(catalog: Catalog, name: str) -> Method:
    found = catalog.method(f"/{SERVICE}/{name}")
    assert found is not None, name
    return found


async def two_instances(catalog: Catalog, start_echo: StartEcho) -> tuple[EchoPlugin, EchoPlugin]:
    first, second = await start_echo(), await start_echo()
    await serving_instances(catalog, "echo", 2)
    return first, second


async def served_by(upstreams: Upstreams, catalog: Catalog, calls: int) -> Counter[str]:
    echo = method(catalog, "Echo")
    seen: Counter[str] = Counter()
    for _ in range(calls):
        reply = await upstreams.unary(echo, message_bytes(message="hi"), timeout_seconds=5)
        seen[EchoResponse.FromString(reply.body).served_by] += 1
    return seen


async def test_round_robin_spreads_calls_over_two_instances(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    first, second = await two_instances(catalog, start_echo)

    seen = await served_by(upstreams, catalog, 6)

    assert seen == {first.address: 3, second.address: 3}


async def test_an_unhealthy_instance_gets_no_traffic(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    first, second = await two_instances(catalog, start_echo)

    await first.server.health.set("", NOT_SERVING)
    await serving_instances(catalog, "echo", 1)
    seen = await served_by(upstreams, catalog, 4)
    await first.server.health.set("", SERVING)
    await serving_instances(catalog, "echo", 2)
    back = await served_by(upstreams, catalog, 4)

    assert seen == {second.address: 4}
    assert set(back) == {first.address, second.address}


async def test_a_safe_call_failing_unavailable_is_retried_on_another_instance(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    broken, healthy = await two_instances(catalog, start_echo)
    broken.servicer.unavailable = True

    seen = await served_by(upstreams, catalog, 4)

    assert seen == {healthy.address: 4}
    assert broken.servicer.calls["Echo"] == 2, "a retry takes no turn: half went there first"
    # Only answers count: the broken instance was called but served nothing.
    assert upstreams.served == {healthy.address: 4}


async def test_an_unsafe_call_failing_unavailable_is_not_retried(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    broken, healthy = await two_instances(catalog, start_echo)
    broken.servicer.unavailable = True
    mutate = method(catalog, "Mutate")

    codes: list[grpc.StatusCode] = []
    for _ in range(4):
        try:
            await upstreams.unary(mutate, message_bytes(), timeout_seconds=5)
        except grpc.aio.AioRpcError as exc:
            codes.append(exc.code())
    failures = len(codes)

    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}
    assert failures == broken.servicer.calls["Mutate"] >= 1
    assert healthy.servicer.calls["Mutate"] == 4 - failures


async def test_a_safe_stream_is_retried_before_its_first_message(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    broken, healthy = await two_instances(catalog, start_echo)
    broken.servicer.unavailable = True

    for _ in range(2):
        async with upstreams.server_stream(
            method(catalog, "Stream"), message_bytes(count=3), timeout_seconds=5
        ) as stream:
            replies = [EchoResponse.FromString(m) async for m in stream]
        assert [(r.index, r.served_by) for r in replies] == [(i, healthy.address) for i in range(3)]


async def test_no_healthy_instance_is_unavailable_naming_the_service(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    plugin = await start_echo()
    await serving_instances(catalog, "echo", 1)
    echo = method(catalog, "Echo")
    await plugin.server.health.set("", NOT_SERVING)
    await serving_instances(catalog, "echo", 0)

    with pytest.raises(NoHealthyInstance) as raised:
        await upstreams.unary(echo, message_bytes(), timeout_seconds=5)

    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "'echo'" in (raised.value.details() or "")
    info = error_info(raised.value)
    assert info is not None
    assert info.reason == "NO_HEALTHY_INSTANCE"


async def test_metadata_goes_upstream_and_comes_back(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    plugin = await start_echo()
    await serving_instances(catalog, "echo", 1)

    reply = await upstreams.unary(
        method(catalog, "Echo"), message_bytes(), timeout_seconds=5, metadata=(("x-trace", "t1"),)
    )

    assert "x-trace=t1" in EchoResponse.FromString(reply.body).metadata
    assert ("x-echo-initial", plugin.address) in reply.initial_metadata
    assert ("x-echo-trailing", "done") in reply.trailing_metadata


async def test_client_and_bidi_streams_reach_an_instance(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    await start_echo()
    await serving_instances(catalog, "echo", 1)

    async def requests() -> AsyncIterator[bytes]:
        for word in ("a", "b", "c"):
            yield message_bytes(message=word)

    collected = await upstreams.client_stream(
        method(catalog, "Collect"), requests(), timeout_seconds=5
    )
    async with upstreams.bidi_stream(method(catalog, "Chat"), requests()) as chat:
        answers = [EchoResponse.FromString(m).message async for m in chat]

    assert EchoResponse.FromString(collected.body).message == "a+b+c"
    assert answers == ["a", "b", "c"]


async def test_a_channel_is_opened_per_instance_and_closed_when_it_leaves(
    catalog: Catalog, upstreams: Upstreams, start_echo: StartEcho
) -> None:
    first, second = await two_instances(catalog, start_echo)
    assert {first.address, second.address} <= upstreams.addresses

    await first.stop()

    async def closed() -> bool | None:
        return True if first.address not in upstreams.addresses else None

    await eventually(closed, what="the channel of the departed instance closing")
    assert second.address in upstreams.addresses
