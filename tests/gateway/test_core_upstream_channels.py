"""Upstreams' channels when an instance crashes and comes back at the same address.

The registry keeps a crashed instance (UNREACHABLE) until its lease runs out, so one
restarted within its lease serves again at an address whose channel the gateway kept.
The catalog is faked here (the registry's part is tested in tests/registry); the
instance is a real echo server on a real port.
"""

from __future__ import annotations

from collections.abc import Callable

import grpc
import pytest

from gateway.model import Instance, Method, Service, Snapshot, build_snapshot
from gateway.upstream import Upstreams
from plugmesh.registry.v1 import registry_pb2
from tests.gateway.echo import DESCRIPTOR, SERVICE, EchoPlugin, EchoResponse, message_bytes

SERVING = registry_pb2.HEALTH_STATUS_SERVING
UNREACHABLE = registry_pb2.HEALTH_STATUS_UNREACHABLE
ECHO = Method("echo", DESCRIPTOR.methods_by_name["Echo"])


class _Catalog:
    """What :class:`Upstreams` reads of the catalog: the snapshot and its changes."""

    def __init__(self) -> None:
        self.snapshot = Snapshot()
        self._subscribers: list[Callable[[Snapshot], None]] = []

    def subscribe(self, subscriber: Callable[[Snapshot], None]) -> Callable[[], None]:
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def publish(self, *instances: Instance) -> None:
        """The echo service with ``instances``, as the registry's watch would push it."""
        echo = Service("echo", "1.0.0", (SERVICE,), (), instances, "", None)
        self.snapshot = build_snapshot({"echo": echo}, self.snapshot)
        for subscriber in tuple(self._subscribers):
            subscriber(self.snapshot)


async def echo_at(address: str) -> EchoPlugin:
    plugin = EchoPlugin("", address=address, register=False)
    await plugin.start()
    return plugin


async def test_an_instance_restarted_at_its_address_is_reached_on_the_first_call() -> None:
    plugin = await echo_at("127.0.0.1:0")
    address = plugin.address
    catalog = _Catalog()
    upstreams = Upstreams(catalog, close_grace_seconds=0.2)  # type: ignore[arg-type]  # a fake catalog
    try:
        catalog.publish(Instance("echo-1", address, SERVING))
        await upstreams.start()
        await upstreams.unary(ECHO, message_bytes(), timeout_seconds=5)

        await plugin.stop()
        # Calls that meet the crash: the channel fails to connect, and backs off.
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await upstreams.unary(ECHO, message_bytes(), timeout_seconds=5)
            assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        catalog.publish(Instance("echo-1", address, UNREACHABLE))
        plugin = await echo_at(address)
        catalog.publish(Instance("echo-1", address, SERVING))

        reply = await upstreams.unary(ECHO, message_bytes(), timeout_seconds=5)
    finally:
        await upstreams.close()
        await plugin.stop()

    assert EchoResponse.FromString(reply.body).served_by == address
