"""Leases on the console, against a real registry: a watcher that asks for renewals hears
each one (and only such a watcher: the catalog's kind hears none), the console's
:class:`~gateway.console.Leases` follows them while somebody looks and stops its watch
when nobody does, also over mutual TLS with the gateway's certificate, and the mesh feed
sends a ``lease`` frame per renewal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from gateway.catalog import Catalog
from gateway.console import Leases
from gateway.console.mesh import mesh_frames
from meshkit.config import MeshConfig
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.registry.conftest import FAST_BACKOFF, registry_config, start_registry
from tests.registry.test_registry_watch import next_message, register_request
from tests.support.certs import TestCa
from tests.support.registry import StartRegistry
from tests.support.waiting import until

__all__ = ["registry_config", "start_registry"]  # the registry's fixtures, used here

SECRET = "lease-secret"
METADATA = ((SECRET_METADATA_KEY, SECRET),)
UPSERTED = registry_pb2.CHANGE_TYPE_UPSERTED
SYNCED = registry_pb2.CHANGE_TYPE_SYNCED


@pytest.fixture
async def registry(start_registry: StartRegistry) -> RegistryServer:
    """A registry that wants the registration secret (as every mesh registry does)."""
    return await start_registry(registration_secret=SECRET)


@pytest.fixture
async def stub(
    registry: RegistryServer,
) -> AsyncIterator[registry_pb2_grpc.RegistryServiceAsyncStub]:
    async with grpc.aio.insecure_channel(registry.address) as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


def _lease(message: registry_pb2.WatchServicesResponse) -> float:
    (instance,) = message.service.instances
    return instance.lease_expire_time.ToNanoseconds() / 1e9


async def test_only_a_watcher_that_asks_hears_lease_renewals(
    registry: RegistryServer, stub: registry_pb2_grpc.RegistryServiceAsyncStub
) -> None:
    registered = await stub.RegisterInstance(register_request("widgets", 7101), metadata=METADATA)
    instance_id = registered.instance.instance_id
    asking = stub.WatchServices(
        registry_pb2.WatchServicesRequest(include_lease_renewals=True), metadata=METADATA
    )
    _, plain = registry.registry.subscribe()  # what the catalog's watch is fed from
    try:
        before = _lease(await next_message(asking, lambda m: m.service.name == "widgets"))
        await next_message(asking, lambda m: m.change_type == SYNCED)
        await asyncio.sleep(0.05)  # the renewed lease must end later than the first

        renewed = await stub.RenewLease(
            registry_pb2.RenewLeaseRequest(instance_id=instance_id), metadata=METADATA
        )
        expected = renewed.lease_expire_time.ToNanoseconds() / 1e9
        # Health changes of the address where nothing serves may come in between.
        heard = await next_message(
            asking, lambda m: m.service.name == "widgets" and _lease(m) == expected
        )
        plain_heard = []
        with contextlib.suppress(TimeoutError):
            while True:
                plain_heard.append(await asyncio.wait_for(plain.get(), timeout=0.3))
    finally:
        asking.cancel()
        plain.close()

    assert heard.change_type == UPSERTED
    assert expected > before
    assert not [change for change in plain_heard if change.renewal]


async def test_leases_follow_renewals_while_followed_and_stop_watching_after(
    registry: RegistryServer, stub: registry_pb2_grpc.RegistryServiceAsyncStub
) -> None:
    registered = await stub.RegisterInstance(register_request("widgets", 7102), metadata=METADATA)
    instance_id = registered.instance.instance_id
    leases = Leases(registry.address, secret=SECRET, backoff=FAST_BACKOFF)
    told: list[float] = []
    broadcaster = registry.registry._broadcaster
    watchers_before = broadcaster.subscriber_count

    async with leases.following(lambda: told.append(leases.expire_times.get(instance_id, 0))):
        await until(lambda: instance_id in leases.expire_times, what="the leases synced")
        first = leases.expire_times[instance_id]
        await asyncio.sleep(0.05)
        renewed = await stub.RenewLease(
            registry_pb2.RenewLeaseRequest(instance_id=instance_id), metadata=METADATA
        )
        expected = renewed.lease_expire_time.ToNanoseconds() / 1e9
        await until(lambda: leases.expire_times.get(instance_id) == expected, what="renewal")
        renewal_watchers = broadcaster.renewal_watchers
    await until(lambda: broadcaster.subscriber_count == watchers_before, what="watch closed")
    await leases.close()
    await leases.close()

    assert expected > first
    assert expected in told
    assert renewal_watchers == 1
    assert leases.expire_times == {}


async def test_the_mesh_feed_sends_a_lease_frame_per_renewal(
    registry: RegistryServer, stub: registry_pb2_grpc.RegistryServiceAsyncStub
) -> None:
    registered = await stub.RegisterInstance(register_request("widgets", 7103), metadata=METADATA)
    instance_id = registered.instance.instance_id
    catalog = Catalog(registry.address, secret=SECRET, backoff=FAST_BACKOFF)
    leases = Leases(registry.address, secret=SECRET, backoff=FAST_BACKOFF)
    await catalog.start()
    frames = mesh_frames(catalog, leases)
    try:
        assert await catalog.wait_ready(timeout_seconds=5)
        renewed_at: float | None = None
        async with asyncio.timeout(10):
            async for raw in frames:
                event, data = _parse(raw)
                if event == "lease" and renewed_at is None and instance_id in data["leases"]:
                    renewed = await stub.RenewLease(
                        registry_pb2.RenewLeaseRequest(instance_id=instance_id),
                        metadata=METADATA,
                    )
                    renewed_at = renewed.lease_expire_time.ToNanoseconds() / 1e9
                elif event == "lease" and data["leases"].get(instance_id) == renewed_at:
                    break
    finally:
        await frames.aclose()
        await leases.close()
        await catalog.close()

    assert renewed_at is not None
    assert data["now"] < renewed_at


def _parse(raw: bytes) -> tuple[str, dict[str, Any]]:
    lines = raw.decode().splitlines()
    return lines[0].removeprefix("event: "), json.loads(lines[1].removeprefix("data: "))


async def test_leases_follow_renewals_over_mutual_tls(
    start_registry: StartRegistry, tmp_path: Path
) -> None:
    ca = TestCa(tmp_path / "mesh")
    mesh = dataclasses.replace(MeshConfig.from_env({}), tls=ca.member("registry"))
    registry = await start_registry(mesh=mesh)
    leases = Leases(registry.address, backoff=FAST_BACKOFF, tls=ca.member("gateway"))
    try:
        async with leases.following(lambda: None):
            await until(lambda: bool(leases.expire_times), what="the leases synced")
            (own,) = leases.expire_times  # the registry's own instance
            first = leases.expire_times[own]
            # The registry renews its own lease every third of it, as every instance does.
            await until(
                lambda: leases.expire_times.get(own, 0) > first,
                timeout_seconds=registry.registry.lease_seconds,
                what="a renewal over mutual TLS",
            )
    finally:
        await leases.close()
