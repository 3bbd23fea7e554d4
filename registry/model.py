"""The registry's domain: services, instances and their health, free of protobuf types.

The service module translates these to and from ``plugmesh.registry.v1`` messages; the
store persists them; everything in between works on these frozen dataclasses.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


class Health(enum.Enum):
    """The registry's view of an instance's health."""

    UNKNOWN = "unknown"
    SERVING = "serving"
    NOT_SERVING = "not_serving"
    UNREACHABLE = "unreachable"


class ChangeKind(enum.Enum):
    """What a :class:`ServiceChange` reports."""

    UPSERTED = "upserted"
    REMOVED = "removed"


@dataclass(frozen=True)
class HttpRoute:
    """One HTTP binding of an RPC, from its ``google.api.http`` rule."""

    method: str
    path: str
    rpc: str


@dataclass(frozen=True)
class Dependency:
    """A service this service needs, by full gRPC name, with the versions it accepts."""

    service: str
    version_range: str = ""
    optional: bool = False


@dataclass(frozen=True)
class ServiceSpec:
    """What a service is: its contract, as declared by its newest registered instance.

    ``schema`` is a serialized ``google.protobuf.FileDescriptorSet`` holding the files
    that define ``grpc_services`` and everything they import, imports first.
    """

    name: str
    version: str
    grpc_services: tuple[str, ...]
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    routes: tuple[HttpRoute, ...] = ()
    schema: bytes = b""
    schema_digest: str = ""


@dataclass(frozen=True)
class InstanceRecord:
    """The persisted part of an instance: what survives a registry restart."""

    instance_id: str
    service: str
    address: str
    version: str
    metadata: Mapping[str, str]
    register_time: datetime
    lease_expire_time: datetime


@dataclass(frozen=True)
class Instance:
    """An instance with its live state (health is never persisted)."""

    record: InstanceRecord
    health: Health
    health_change_time: datetime

    @property
    def instance_id(self) -> str:
        """The registry-assigned id."""
        return self.record.instance_id

    @property
    def service(self) -> str:
        """Short name of the service this is an instance of."""
        return self.record.service

    @property
    def address(self) -> str:
        """The instance's gRPC address."""
        return self.record.address


@dataclass(frozen=True)
class ServiceView:
    """A snapshot of one service with its instances, as callers see it."""

    spec: ServiceSpec
    instances: tuple[Instance, ...] = field(default_factory=tuple)

    @property
    def name(self) -> str:
        """The service's short name."""
        return self.spec.name

    @property
    def health(self) -> Health:
        """SERVING when any instance serves; otherwise the most hopeful other state."""
        states = {instance.health for instance in self.instances}
        for health in (Health.SERVING, Health.UNKNOWN, Health.NOT_SERVING):
            if health in states:
                return health
        return Health.UNREACHABLE if states else Health.UNKNOWN


@dataclass(frozen=True)
class ServiceChange:
    """One change pushed to watchers: a service's new state, or its removal.

    ``renewal`` marks an UPSERTED whose only news is a renewed lease: only the watchers
    that asked for renewals get it.
    """

    kind: ChangeKind
    name: str
    service: ServiceView | None = None
    renewal: bool = False


@dataclass(frozen=True)
class Registration:
    """A request to register an instance, before its schema is resolved.

    ``file_descriptor_set`` is a serialized ``FileDescriptorSet``; ``None`` asks the
    registry to fetch the descriptors over server reflection.
    """

    service: str
    address: str
    version: str = ""
    grpc_services: tuple[str, ...] = ()
    file_descriptor_set: bytes | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DependencyCheck:
    """The result of checking one declared dependency."""

    dependency: Dependency
    satisfied: bool
    found_version: str = ""
    reason: str = ""
