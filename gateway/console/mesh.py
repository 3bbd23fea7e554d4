"""The mesh view's feed: every service, its instances, versions, health and lease.

Services, instances and health come from the catalog, as the registry's watch reports
them (:meth:`gateway.catalog.Catalog.subscribe`): a ``mesh`` frame per change. Leases come
from :class:`~gateway.console.leases.Leases`, whose own watch hears every renewal: a
``lease`` frame per renewal. Nothing is polled. Every frame carries the gateway's ``now``
so the page counts each lease down against the gateway's clock, not the browser's.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

from gateway.catalog import Catalog, Instance, Service, Snapshot
from gateway.console.leases import Leases
from gateway.console.sse import frame
from plugmesh.registry.v1 import registry_pb2

__all__ = ["mesh_frames", "mesh_view"]

_HEALTH_PREFIX = "HEALTH_STATUS_"


def mesh_view(snapshot: Snapshot, leases: Mapping[str, float] | None = None) -> dict[str, Any]:
    """The snapshot as the page shows it, services ordered by name; ``leases`` (instance
    id -> Unix seconds) are newer than the catalog's when given."""
    services, now = snapshot.services, time.time()
    return {
        "generation": snapshot.generation,
        "now": now,
        "services": [_service(services[name], leases or {}, now) for name in sorted(services)],
    }


async def mesh_frames(catalog: Catalog, leases: Leases | None) -> AsyncGenerator[bytes, None]:
    """A ``mesh`` frame with the current state, then one after every change of the
    catalog and a ``lease`` frame after every renewal (a slow reader skips intermediate
    states, never the last)."""
    woken = asyncio.Event()
    unsubscribe = catalog.subscribe(lambda _snapshot: woken.set())
    try:
        following = leases.following(woken.set) if leases is not None else contextlib.nullcontext()
        async with following:
            generation = -1
            shown: Mapping[str, float] = {}
            while True:
                woken.clear()
                snapshot = catalog.snapshot
                expire_times = leases.expire_times if leases is not None else shown
                if snapshot.generation != generation:
                    generation, shown = snapshot.generation, expire_times
                    yield frame("mesh", mesh_view(snapshot, expire_times))
                elif expire_times is not shown:
                    shown = expire_times
                    yield frame("lease", {"now": time.time(), "leases": dict(expire_times)})
                else:
                    await woken.wait()
    finally:
        unsubscribe()


def _service(service: Service, leases: Mapping[str, float], now: float) -> dict[str, Any]:
    return {
        "name": service.name,
        "version": service.version,
        "serving": service.serving,
        "grpcServices": list(service.grpc_services),
        "instances": [_instance(instance, leases, now) for instance in service.instances],
    }


def _instance(instance: Instance, leases: Mapping[str, float], now: float) -> dict[str, Any]:
    return {
        "id": instance.instance_id,
        "address": instance.address,
        "version": instance.version,
        "health": registry_pb2.HealthStatus.Name(instance.health).removeprefix(_HEALTH_PREFIX),
        "registerTime": instance.register_time_seconds,
        "healthChangeTime": instance.health_change_time_seconds,
        "leaseExpireTime": _lease_end(instance, leases, now),
    }


def _lease_end(instance: Instance, leases: Mapping[str, float], now: float) -> float:
    # The catalog's lease is as of the instance's last registration or health change. The
    # leases' watch knows better; until it has synced, a catalogued lease already past
    # was renewed since, as far as anyone knows: unknown (0), not "ran out".
    catalogued = instance.lease_expire_time_seconds
    if instance.instance_id in leases:
        return max(leases[instance.instance_id], catalogued)
    return catalogued if catalogued > now else 0.0
