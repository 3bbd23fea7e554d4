"""A registry stand-in that records what instances tell it, for toolkit tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.protobuf import duration_pb2

from meshkit.errors import AlreadyExists, NotFound
from meshkit.grpc_types import Context
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc


class FakeRegistry(registry_pb2_grpc.RegistryServiceServicer):
    """Accepts registrations, or refuses them when told to; forgets on demand."""

    def __init__(self, lease_seconds: float = 0.3) -> None:
        self.lease_seconds = lease_seconds
        self.registrations: list[registry_pb2.RegisterInstanceRequest] = []
        self.secrets: list[str | None] = []
        self.renewals = 0
        self.deregistered: list[str] = []
        self.known: set[str] = set()
        self.refuse = False
        self.changed = asyncio.Condition()

    async def RegisterInstance(
        self, request: registry_pb2.RegisterInstanceRequest, context: Context
    ) -> registry_pb2.RegisterInstanceResponse:
        secret = dict(context.invocation_metadata() or ()).get("plugmesh-registration-secret")
        if self.refuse:
            raise AlreadyExists(
                "route GET /v1/things is already served by 'other'", reason="ROUTE_CONFLICT"
            )
        instance_id = f"{request.service}-{len(self.registrations)}"
        async with self.changed:
            self.registrations.append(request)
            self.secrets.append(str(secret) if secret is not None else None)
            self.known.add(instance_id)
            self.changed.notify_all()
        lease = duration_pb2.Duration()
        lease.FromMilliseconds(int(self.lease_seconds * 1000))
        return registry_pb2.RegisterInstanceResponse(
            instance=registry_pb2.Instance(instance_id=instance_id, service=request.service),
            lease_duration=lease,
        )

    async def RenewLease(
        self, request: registry_pb2.RenewLeaseRequest, context: Context
    ) -> registry_pb2.RenewLeaseResponse:
        if request.instance_id not in self.known:
            raise NotFound(f"instance {request.instance_id!r} is not registered", reason="NO_LEASE")
        async with self.changed:
            self.renewals += 1
            self.changed.notify_all()
        return registry_pb2.RenewLeaseResponse()

    async def DeregisterInstance(
        self, request: registry_pb2.DeregisterInstanceRequest, context: Context
    ) -> registry_pb2.DeregisterInstanceResponse:
        self.deregistered.append(request.instance_id)
        self.known.discard(request.instance_id)
        return registry_pb2.DeregisterInstanceResponse()

    async def GetService(
        self, request: registry_pb2.GetServiceRequest, context: Context
    ) -> registry_pb2.GetServiceResponse:
        if request.service == "boom":
            raise RuntimeError("secret internals")
        raise NotFound(
            f"service {request.service!r} is not registered",
            reason="SERVICE_NOT_FOUND",
            metadata={"service": request.service},
        )

    async def ListServices(
        self, request: registry_pb2.ListServicesRequest, context: Context
    ) -> registry_pb2.ListServicesResponse:
        return registry_pb2.ListServicesResponse()

    async def WatchServices(
        self, request: registry_pb2.WatchServicesRequest, context: Context
    ) -> AsyncIterator[registry_pb2.WatchServicesResponse]:
        yield registry_pb2.WatchServicesResponse(change_type=registry_pb2.CHANGE_TYPE_SYNCED)

    async def GetServiceSchema(
        self, request: registry_pb2.GetServiceSchemaRequest, context: Context
    ) -> registry_pb2.GetServiceSchemaResponse:
        raise NotFound(f"service {request.service!r} is not registered", reason="NOT_FOUND")

    async def ListEventServices(
        self, request: registry_pb2.ListEventServicesRequest, context: Context
    ) -> registry_pb2.ListEventServicesResponse:
        return registry_pb2.ListEventServicesResponse()

    async def CheckDependencies(
        self, request: registry_pb2.CheckDependenciesRequest, context: Context
    ) -> registry_pb2.CheckDependenciesResponse:
        return registry_pb2.CheckDependenciesResponse(satisfied=True)

    async def wait_for(self, predicate: Any, within_seconds: float = 5.0) -> None:
        """Wait until ``predicate()`` holds."""
        async with asyncio.timeout(within_seconds), self.changed:
            await self.changed.wait_for(predicate)
