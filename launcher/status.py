"""The registry's view of the mesh, as ``plugmesh status`` and ``plugmesh up`` print it.

The table (:func:`status_rows`) and the JSON document (:func:`status_document`) are made
from the same :class:`MeshView`, so a script sees what a person sees.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import grpc
from grpc_health.v1 import health_pb2

from launcher.output import JSON, TABLE, print_json, render_table
from meshkit.registration import secret_metadata
from meshkit.tls import MeshTls, dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc

_PREFIX = "HEALTH_STATUS_"
SERVING = "SERVING"
# The typed stubs of grpc_health lack the stub methods, so the call is spelled out.
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"


class RegistryUnreachable(Exception):
    """The registry did not answer."""

    def __init__(self, address: str, detail: str) -> None:
        super().__init__(f"cannot reach the registry at {address}: {detail}")
        self.address = address
        self.detail = detail


@dataclass(frozen=True)
class MeshView:
    """What the registry reported: its own health and every registered service."""

    registry_address: str
    registry_health: str
    services: Sequence[registry_pb2.Service]

    def health_of(self, name: str) -> str:
        """Health of the process called ``name`` (``UNREGISTERED`` when unknown)."""
        if name == "registry":
            return self.registry_health
        for service in self.services:
            if _same_name(service.name, name):
                return health_name(service.health)
        return "UNREGISTERED"

    def not_serving(self, names: Collection[str]) -> list[str]:
        """Those of ``names`` that are not SERVING."""
        return [name for name in names if self.health_of(name) != SERVING]


def _same_name(a: str, b: str) -> bool:
    # "machine-users" and "machineusers" name the same process.
    return a.replace("-", "").replace("_", "") == b.replace("-", "").replace("_", "")


def health_name(health: registry_pb2.HealthStatus.ValueType) -> str:
    """``HEALTH_STATUS_SERVING`` → ``SERVING``."""
    return registry_pb2.HealthStatus.Name(health).removeprefix(_PREFIX)


async def fetch_view(
    address: str,
    timeout_seconds: float = 3.0,
    tls: MeshTls | None = None,
    *,
    secret: str | None = None,
) -> MeshView:
    """Ask the registry at ``address`` for every service and for its own health (over
    mutual TLS with ``tls``), as a mesh member when given the registration ``secret``
    (the registry wants it).

    Raises:
        RegistryUnreachable: The registry did not answer in time.
    """
    async with dial(address, tls) as channel:
        try:
            listed = await registry_pb2_grpc.RegistryServiceStub(channel).ListServices(
                registry_pb2.ListServicesRequest(),
                timeout=timeout_seconds,
                metadata=secret_metadata(secret),
            )
        except grpc.aio.AioRpcError as exc:
            raise RegistryUnreachable(address, f"{exc.code().name}: {exc.details()}") from exc
        check = channel.unary_unary(
            _HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            checked = await check(health_pb2.HealthCheckRequest(), timeout=timeout_seconds)
            own = health_pb2.HealthCheckResponse.ServingStatus.Name(checked.status)
        except grpc.aio.AioRpcError:
            own = "UNKNOWN"
    return MeshView(address, own, list(listed.services))


async def wait_until_serving(
    address: str,
    names: Collection[str],
    *,
    timeout_seconds: float,
    interval_seconds: float = 0.2,
    check: Callable[[], None] = lambda: None,
    tls: MeshTls | None = None,
    secret: str | None = None,
) -> MeshView:
    """Poll the registry until every one of ``names`` is SERVING or the time is up.

    ``check`` runs before each poll and may raise to give up early. Returns the last
    view; check :meth:`MeshView.not_serving` for what never came up.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        check()
        try:
            view = await fetch_view(
                address, timeout_seconds=min(3.0, timeout_seconds), tls=tls, secret=secret
            )
        except RegistryUnreachable:
            if time.monotonic() > deadline:
                raise
        else:
            if not view.not_serving(names) or time.monotonic() > deadline:
                return view
        await asyncio.sleep(interval_seconds)


def _lease(instance: registry_pb2.Instance, now: float) -> str:
    if not instance.HasField("lease_expire_time"):
        return "-"
    left = instance.lease_expire_time.ToNanoseconds() / 1e9 - now
    return f"in {left:.0f}s" if left >= 0 else f"expired {-left:.0f}s ago"


def status_rows(view: MeshView, now: float | None = None) -> list[tuple[str, ...]]:
    """One row per instance: service, version, instance address, health, lease expiry."""
    now = time.time() if now is None else now
    rows: list[tuple[str, ...]] = []
    if not any(_same_name(s.name, "registry") for s in view.services):
        rows.append(("registry", "-", view.registry_address, view.registry_health, "-"))
    for service in sorted(view.services, key=lambda s: s.name):
        if not service.instances:
            rows.append(
                (service.name, service.version or "-", "-", health_name(service.health), "-")
            )
        for instance in sorted(service.instances, key=lambda i: i.address):
            rows.append(
                (
                    service.name,
                    instance.version or service.version or "-",
                    instance.address,
                    health_name(instance.health),
                    _lease(instance, now),
                )
            )
    return rows


STATUS_HEADERS = ("SERVICE", "VERSION", "INSTANCE", "HEALTH", "LEASE EXPIRES")


def _lease_document(instance: registry_pb2.Instance, now: float) -> dict[str, Any] | None:
    if not instance.HasField("lease_expire_time"):
        return None
    expires = instance.lease_expire_time
    return {
        "expire_time": expires.ToJsonString(),
        "seconds_left": round(expires.ToNanoseconds() / 1e9 - now, 1),
    }


def status_document(view: MeshView, now: float | None = None) -> dict[str, Any]:
    """The view as ``plugmesh status -o json`` prints it.

    The shape is kept stable for scripts: ``registry`` (the address asked and its own
    health), then ``services`` sorted by name, each with its ``instances`` sorted by
    address. A missing version or lease is ``null``; an expired lease has a negative
    ``seconds_left``.
    """
    now = time.time() if now is None else now
    services = [
        {
            "name": service.name,
            "version": service.version or None,
            "health": health_name(service.health),
            "instances": [
                {
                    "address": instance.address,
                    "version": instance.version or service.version or None,
                    "health": health_name(instance.health),
                    "lease": _lease_document(instance, now),
                }
                for instance in sorted(service.instances, key=lambda i: i.address)
            ],
        }
        for service in sorted(view.services, key=lambda s: s.name)
    ]
    return {
        "registry": {"address": view.registry_address, "health": view.registry_health},
        "services": services,
    }


async def print_status(
    address: str,
    out: TextIO,
    err: TextIO,
    timeout_seconds: float,
    output: str = TABLE,
    *,
    tls: MeshTls | None = None,
    secret: str | None = None,
) -> int:
    """``plugmesh status``: print the table, or the JSON document when ``output`` is
    ``json``; 1 when the registry cannot be reached (nothing on ``out`` then)."""
    try:
        view = await fetch_view(address, timeout_seconds, tls, secret=secret)
    except RegistryUnreachable as exc:
        print(f"plugmesh: {exc}", file=err)
        print("plugmesh: is the mesh running? start it with `plugmesh up`", file=err)
        return 1
    if output == JSON:
        print_json(status_document(view), out)
    else:
        print(render_table(STATUS_HEADERS, status_rows(view)), file=out)
    return 0
