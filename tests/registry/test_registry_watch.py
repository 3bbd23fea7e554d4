"""WatchServices: the snapshot, SYNCED, then every change as it happens; lease expiry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
import pytest

from meshkit.errors import ResourceExhausted
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.broadcast import BroadcastClosed, Broadcaster, WatcherOverflowed
from registry.core import Registry
from registry.model import ChangeKind, Registration, ServiceChange
from registry.service import RegistryServicer
from registry.store import RegistryStore
from tests.support.registry import Contract, Method, StartRegistry, contract_file, descriptor_set

if TYPE_CHECKING:
    Stub = registry_pb2_grpc.RegistryServiceAsyncStub
    WatchCall = grpc.aio.UnaryStreamCall[
        registry_pb2.WatchServicesRequest, registry_pb2.WatchServicesResponse
    ]

UPSERTED = registry_pb2.CHANGE_TYPE_UPSERTED
REMOVED = registry_pb2.CHANGE_TYPE_REMOVED
SYNCED = registry_pb2.CHANGE_TYPE_SYNCED


def contract(name: str) -> Contract:
    return Contract(
        package=f"test.{name}.v1",
        service="Service",
        methods=[Method("Get", [("GET", f"/v1/{name}/{{id}}")])],
    )


def register_request(name: str, port: int) -> registry_pb2.RegisterInstanceRequest:
    return registry_pb2.RegisterInstanceRequest(
        service=name,
        address=f"127.0.0.1:{port}",
        grpc_services=[contract(name).full_name],
        file_descriptor_set=descriptor_set([contract_file(contract(name))]),
    )


async def next_message(
    call: WatchCall,
    matching: Callable[[registry_pb2.WatchServicesResponse], bool] = lambda _: True,
    timeout_seconds: float = 5.0,
) -> registry_pb2.WatchServicesResponse:
    """Read the stream until a message matches; fail after ``timeout_seconds``."""
    async with asyncio.timeout(timeout_seconds):
        while True:
            message = await call.read()
            assert isinstance(message, registry_pb2.WatchServicesResponse), "stream ended"
            if matching(message):
                return message


async def test_watch_sends_every_service_then_synced_then_changes(stub: Stub) -> None:
    await stub.RegisterInstance(register_request("widgets", 7001))
    call = stub.WatchServices(registry_pb2.WatchServicesRequest())
    try:
        initial = [await next_message(call) for _ in range(3)]
        assert [(m.change_type, m.service.name) for m in initial] == [
            (UPSERTED, "registry"),
            (UPSERTED, "widgets"),
            (SYNCED, ""),
        ]
        assert not initial[2].HasField("service")

        registered = await stub.RegisterInstance(register_request("gadgets", 7002))
        added = await next_message(call, lambda m: m.service.name == "gadgets")
        assert (added.change_type, added.service.name) == (UPSERTED, "gadgets")
        assert [i.instance_id for i in added.service.instances] == [registered.instance.instance_id]

        await stub.DeregisterInstance(
            registry_pb2.DeregisterInstanceRequest(instance_id=registered.instance.instance_id)
        )
        # Nothing serves at these addresses: health changes to UNREACHABLE come in between.
        removed = await next_message(
            call, lambda m: m.service.name == "gadgets" and m.change_type != UPSERTED
        )
        assert removed.change_type == REMOVED
        assert removed.service == registry_pb2.Service(name="gadgets")
    finally:
        call.cancel()


async def test_expired_lease_removes_the_instance_and_it_can_register_again(
    start_registry: StartRegistry,
) -> None:
    registry = await start_registry(lease_seconds=0.3)
    async with grpc.aio.insecure_channel(registry.address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        call = stub.WatchServices(registry_pb2.WatchServicesRequest())
        try:
            await next_message(call, lambda m: m.change_type == SYNCED)
            first = await stub.RegisterInstance(register_request("widgets", 7001))

            removed = await next_message(
                call, lambda m: m.service.name == "widgets" and m.change_type == REMOVED
            )

            assert removed.service.name == "widgets"
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.RenewLease(
                    registry_pb2.RenewLeaseRequest(instance_id=first.instance.instance_id)
                )
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            await stub.RegisterInstance(register_request("widgets", 7001))
            back = await next_message(call, lambda m: m.service.name == "widgets")
            assert back.change_type == UPSERTED
        finally:
            call.cancel()
        # The registry renews its own lease, so it outlives every lease it hands out.
        listed = await stub.ListServices(registry_pb2.ListServicesRequest())
        assert "registry" in [s.name for s in listed.services]


async def test_watch_ends_with_unavailable_when_the_registry_shuts_down(
    start_registry: StartRegistry,
) -> None:
    registry = await start_registry()
    async with grpc.aio.insecure_channel(registry.address) as channel:
        call = registry_pb2_grpc.RegistryServiceStub(channel).WatchServices(
            registry_pb2.WatchServicesRequest()
        )
        await next_message(call, lambda m: m.change_type == SYNCED)

        await registry.close()

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await next_message(call, lambda m: False)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_slow_subscriber_overflows_instead_of_blocking_the_broadcaster() -> None:
    broadcaster = Broadcaster(capacity=2)
    subscription = broadcaster.subscribe()

    for name in ("a", "b", "c", "d"):
        broadcaster.publish(ServiceChange(ChangeKind.REMOVED, name))

    assert [(await subscription.get()).name, (await subscription.get()).name] == ["a", "b"]
    assert subscription.overflowed
    assert broadcaster.subscriber_count == 0
    with pytest.raises(WatcherOverflowed):
        await subscription.get()


async def test_closed_broadcaster_ends_current_and_future_subscriptions() -> None:
    broadcaster = Broadcaster()
    current = broadcaster.subscribe()

    broadcaster.close()

    with pytest.raises(BroadcastClosed):
        await current.get()
    with pytest.raises(BroadcastClosed):
        await broadcaster.subscribe().get()


async def test_watcher_that_falls_behind_gets_resource_exhausted(tmp_path: Path) -> None:
    registry = Registry(RegistryStore(f"sqlite:///{tmp_path / 'r.db'}"), watcher_capacity=1)
    await registry.start()
    try:
        servicer = RegistryServicer(registry)
        stream = servicer.WatchServices(registry_pb2.WatchServicesRequest(), None)  # type: ignore[arg-type]  # the context is unused
        assert (await anext(stream)).change_type == SYNCED
        for port, name in ((7001, "widgets"), (7002, "gadgets")):
            request = register_request(name, port)
            await registry.register(
                Registration(
                    service=name,
                    address=request.address,
                    grpc_services=tuple(request.grpc_services),
                    file_descriptor_set=request.file_descriptor_set.SerializeToString(),
                )
            )

        assert (await anext(stream)).service.name == "widgets"
        with pytest.raises(ResourceExhausted) as caught:
            await anext(stream)
        assert caught.value.reason == "WATCHER_TOO_SLOW"
        await stream.aclose()  # type: ignore[attr-defined]  # typed as AsyncIterator
    finally:
        await registry.close()
