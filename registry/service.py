"""``plugmesh.registry.v1.RegistryService``: the only place protobuf meets the domain.

Each method translates its request into a call on :class:`~registry.core.Registry` and
the result back into a response. Errors are :mod:`meshkit.errors` exceptions; the server's
error interceptor turns them into ``google.rpc.Status``. No method checks its caller: the
server admits each call by the access its RPC declares before it gets here
(:mod:`registry.access`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from google.protobuf import duration_pb2, timestamp_pb2

from meshkit.errors import InvalidArgument, PermissionDenied, ResourceExhausted, Unavailable
from meshkit.grpc_types import Context
from meshkit.tls import peer_services
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.broadcast import BroadcastClosed, WatcherOverflowed
from registry.core import Registry
from registry.model import (
    ChangeKind,
    Dependency,
    DependencyCheck,
    Health,
    HttpRoute,
    Instance,
    Registration,
    ServiceChange,
    ServiceView,
)

_HEALTH = {
    Health.UNKNOWN: registry_pb2.HEALTH_STATUS_UNKNOWN,
    Health.SERVING: registry_pb2.HEALTH_STATUS_SERVING,
    Health.NOT_SERVING: registry_pb2.HEALTH_STATUS_NOT_SERVING,
    Health.UNREACHABLE: registry_pb2.HEALTH_STATUS_UNREACHABLE,
}
_CHANGE = {
    ChangeKind.UPSERTED: registry_pb2.CHANGE_TYPE_UPSERTED,
    ChangeKind.REMOVED: registry_pb2.CHANGE_TYPE_REMOVED,
}


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """Serves the registry API over a :class:`Registry`.

    Args:
        registry: The state behind the API.
        check_identity: Whether registration, renewal and deregistration must come with
            a client certificate that names the service they are for (mutual TLS on).
    """

    def __init__(
        self,
        registry: Registry,
        *,
        check_identity: bool = False,
    ) -> None:
        self._registry = registry
        self._check_identity = check_identity

    async def RegisterInstance(
        self, request: registry_pb2.RegisterInstanceRequest, context: Context
    ) -> registry_pb2.RegisterInstanceResponse:
        """Register or refresh an instance."""
        self._check_peer(context, request.service)
        descriptors = request.file_descriptor_set
        registration = Registration(
            service=request.service,
            address=request.address,
            version=request.version,
            grpc_services=tuple(request.grpc_services),
            file_descriptor_set=(
                descriptors.SerializeToString(deterministic=True) if descriptors.file else None
            ),
            metadata=dict(request.metadata),
        )
        instance = await self._registry.register(registration)
        lease = duration_pb2.Duration()
        lease.FromNanoseconds(round(self._registry.lease_seconds * 1e9))
        return registry_pb2.RegisterInstanceResponse(
            instance=instance_message(instance), lease_duration=lease
        )

    async def RenewLease(
        self, request: registry_pb2.RenewLeaseRequest, context: Context
    ) -> registry_pb2.RenewLeaseResponse:
        """Renew an instance's lease."""
        _require("instance_id", request.instance_id)
        self._check_peer(context, self._registry.service_of(request.instance_id))
        expires = self._registry.renew(request.instance_id)
        return registry_pb2.RenewLeaseResponse(lease_expire_time=_timestamp(expires))

    async def DeregisterInstance(
        self, request: registry_pb2.DeregisterInstanceRequest, context: Context
    ) -> registry_pb2.DeregisterInstanceResponse:
        """Remove an instance; removing an unknown one succeeds."""
        _require("instance_id", request.instance_id)
        self._check_peer(context, self._registry.service_of(request.instance_id))
        await self._registry.deregister(request.instance_id)
        return registry_pb2.DeregisterInstanceResponse()

    async def GetService(
        self, request: registry_pb2.GetServiceRequest, context: Context
    ) -> registry_pb2.GetServiceResponse:
        """Get one service."""
        _require("service", request.service)
        return registry_pb2.GetServiceResponse(
            service=_service(self._registry.get(request.service))
        )

    async def ListServices(
        self, request: registry_pb2.ListServicesRequest, context: Context
    ) -> registry_pb2.ListServicesResponse:
        """List every service, ordered by name."""
        return registry_pb2.ListServicesResponse(
            services=[_service(view) for view in self._registry.list_services()]
        )

    async def WatchServices(
        self, request: registry_pb2.WatchServicesRequest, context: Context
    ) -> AsyncIterator[registry_pb2.WatchServicesResponse]:
        """Stream every service, then SYNCED, then every change.

        With ``include_lease_renewals`` every renewal comes too, as an UPSERTED of the
        renewed instance's service. A watcher that leaves too many changes unread gets
        RESOURCE_EXHAUSTED (reason ``WATCHER_TOO_SLOW``) and should watch again; at
        shutdown watchers get UNAVAILABLE (reason ``SHUTTING_DOWN``).
        """
        snapshot, subscription = self._registry.subscribe(renewals=request.include_lease_renewals)
        with subscription:
            for view in snapshot:
                yield registry_pb2.WatchServicesResponse(
                    change_type=registry_pb2.CHANGE_TYPE_UPSERTED, service=_service(view)
                )
            yield registry_pb2.WatchServicesResponse(change_type=registry_pb2.CHANGE_TYPE_SYNCED)
            while True:
                try:
                    change = await subscription.get()
                except WatcherOverflowed as exc:
                    raise ResourceExhausted(
                        f"the watcher fell behind: {exc}; watch again", reason="WATCHER_TOO_SLOW"
                    ) from exc
                except BroadcastClosed as exc:
                    raise Unavailable(str(exc), reason="SHUTTING_DOWN") from exc
                yield _change(change)

    async def GetServiceSchema(
        self, request: registry_pb2.GetServiceSchemaRequest, context: Context
    ) -> registry_pb2.GetServiceSchemaResponse:
        """Return a service's descriptors."""
        _require("service", request.service)
        spec = self._registry.get(request.service).spec
        response = registry_pb2.GetServiceSchemaResponse(schema_digest=spec.schema_digest)
        response.file_descriptor_set.ParseFromString(spec.schema)
        return response

    async def ListEventServices(
        self, request: registry_pb2.ListEventServicesRequest, context: Context
    ) -> registry_pb2.ListEventServicesResponse:
        """List the producers and consumers of an event type."""
        _require("event_type", request.event_type)
        producers, consumers = self._registry.event_services(request.event_type)
        return registry_pb2.ListEventServicesResponse(producers=producers, consumers=consumers)

    async def CheckDependencies(
        self, request: registry_pb2.CheckDependenciesRequest, context: Context
    ) -> registry_pb2.CheckDependenciesResponse:
        """Check a service's declared dependencies."""
        _require("service", request.service)
        checks = self._registry.check_dependencies(request.service)
        return registry_pb2.CheckDependenciesResponse(
            satisfied=all(check.satisfied or check.dependency.optional for check in checks),
            checks=[_check(check) for check in checks],
        )

    def _check_peer(self, context: Context, service: str | None) -> None:
        # An unknown instance (None) is left to the call: NOT_FOUND, or a no-op.
        if not self._check_identity or service is None:
            return
        named = peer_services(context)
        if service not in named:
            raise PermissionDenied(
                f"the client certificate names {sorted(named) or 'no service'}, not"
                f" {service!r}: a process registers only the service its certificate names",
                reason="IDENTITY_MISMATCH",
                metadata={"service": service, "certificate": ",".join(sorted(named))},
            )


def _require(field: str, value: str) -> None:
    if not value:
        raise InvalidArgument(
            f"{field} is required", reason="INVALID_FIELD", metadata={"field": field}
        )


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    timestamp = timestamp_pb2.Timestamp()
    timestamp.FromDatetime(value)
    return timestamp


def health_message(health: Health) -> registry_pb2.HealthStatus.ValueType:
    """The ``plugmesh.registry.v1.HealthStatus`` of ``health``."""
    return _HEALTH[health]


def instance_message(instance: Instance) -> registry_pb2.Instance:
    """The ``plugmesh.registry.v1.Instance`` message of ``instance``."""
    record = instance.record
    return registry_pb2.Instance(
        instance_id=record.instance_id,
        service=record.service,
        address=record.address,
        version=record.version,
        metadata=dict(record.metadata),
        health=_HEALTH[instance.health],
        register_time=_timestamp(record.register_time),
        lease_expire_time=_timestamp(record.lease_expire_time),
        health_change_time=_timestamp(instance.health_change_time),
    )


def _dependency(dependency: Dependency) -> options_pb2.Dependency:
    return options_pb2.Dependency(
        service=dependency.service,
        version_range=dependency.version_range,
        optional=dependency.optional,
    )


def _route(route: HttpRoute) -> registry_pb2.HttpRoute:
    return registry_pb2.HttpRoute(method=route.method, path=route.path, rpc=route.rpc)


def _service(view: ServiceView) -> registry_pb2.Service:
    spec = view.spec
    return registry_pb2.Service(
        name=spec.name,
        version=spec.version,
        grpc_services=spec.grpc_services,
        produces=spec.produces,
        consumes=spec.consumes,
        dependencies=[_dependency(d) for d in spec.dependencies],
        routes=[_route(r) for r in spec.routes],
        instances=[instance_message(i) for i in view.instances],
        health=_HEALTH[view.health],
        schema_digest=spec.schema_digest,
    )


def _change(change: ServiceChange) -> registry_pb2.WatchServicesResponse:
    if change.service is None:
        service = registry_pb2.Service(name=change.name)
    else:
        service = _service(change.service)
    return registry_pb2.WatchServicesResponse(change_type=_CHANGE[change.kind], service=service)


def _check(check: DependencyCheck) -> registry_pb2.DependencyCheck:
    return registry_pb2.DependencyCheck(
        dependency=_dependency(check.dependency),
        satisfied=check.satisfied,
        found_version=check.found_version,
        reason=check.reason,
    )
