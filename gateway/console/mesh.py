"""The mesh view's feed: every service, its instances, versions and health, as the
registry's watch reports them (:meth:`gateway.catalog.Catalog.changes`), one SSE frame
per change of the catalog; nothing is polled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.catalog import Catalog, Instance, Service, Snapshot
from gateway.console.sse import frame
from plugmesh.registry.v1 import registry_pb2

__all__ = ["mesh_frames", "mesh_view"]

_HEALTH_PREFIX = "HEALTH_STATUS_"


def mesh_view(snapshot: Snapshot) -> dict[str, Any]:
    """The snapshot as the page shows it, services ordered by name."""
    services = snapshot.services
    return {
        "generation": snapshot.generation,
        "services": [_service(services[name]) for name in sorted(services)],
    }


async def mesh_frames(catalog: Catalog) -> AsyncIterator[bytes]:
    """A ``mesh`` frame with the current state, then one after every change (a slow
    reader skips intermediate states, never the last)."""
    async for snapshot in catalog.changes():
        yield frame("mesh", mesh_view(snapshot))


def _service(service: Service) -> dict[str, Any]:
    return {
        "name": service.name,
        "version": service.version,
        "serving": service.serving,
        "grpcServices": list(service.grpc_services),
        "instances": [_instance(instance) for instance in service.instances],
    }


def _instance(instance: Instance) -> dict[str, Any]:
    return {
        "id": instance.instance_id,
        "address": instance.address,
        "version": instance.version,
        "health": registry_pb2.HealthStatus.Name(instance.health).removeprefix(_HEALTH_PREFIX),
        "registerTime": instance.register_time_seconds,
        "healthChangeTime": instance.health_change_time_seconds,
    }
