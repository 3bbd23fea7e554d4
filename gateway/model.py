"""What the gateway knows about the mesh: immutable snapshots of the registry's state.

A :class:`Snapshot` is replaced as a whole on every change, never mutated, so a request
that took one keeps a consistent view while the catalog moves on::

    Snapshot
    ├── services: name → Service        one per registered mesh service ("users")
    │   ├── instances: (Instance, …)    address and health of each running process
    │   └── schema: Schema | None       descriptor pool of its contract (gateway.schemas)
    └── methods: "pkg.Service.Method" → Method
                                        the MethodDescriptor and the name of the service
                                        that serves it

``generation`` grows on every change; ``schema_generation`` only when the set of served
methods changes (a service with a new contract, one that left), so that a route table
built from :meth:`Snapshot.methods` needs rebuilding only when it does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from google.protobuf import descriptor

from gateway.schemas import Schema
from meshkit.descriptors import is_safe_to_retry
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2


@dataclass(frozen=True)
class Instance:
    """One running process of a service, as the registry last reported it."""

    instance_id: str
    address: str
    health: registry_pb2.HealthStatus.ValueType
    #: The version the instance declared.
    version: str = ""
    #: When it first registered and when its health last changed, in Unix seconds; 0
    #: when unknown.
    register_time_seconds: float = 0.0
    health_change_time_seconds: float = 0.0
    #: When its lease runs out unless renewed, in Unix seconds, as of the last change the
    #: watch reported (renewals are not reported to the catalog); 0 when unknown.
    lease_expire_time_seconds: float = 0.0

    @property
    def serving(self) -> bool:
        """Whether the registry sees it SERVING; only serving instances get traffic."""
        return self.health == registry_pb2.HEALTH_STATUS_SERVING


@dataclass(frozen=True)
class Route:
    """One HTTP binding declared by the service, as the registry lists it."""

    method: str
    path: str
    rpc: str


@dataclass(frozen=True)
class Service:
    """A registered mesh service ("users") with its contract and instances.

    ``schema`` is ``None`` when the service declares no gRPC service (the gateway) or its
    descriptors could not be loaded; its methods are then not served.
    """

    name: str
    version: str
    grpc_services: tuple[str, ...]
    routes: tuple[Route, ...]
    instances: tuple[Instance, ...]
    schema_digest: str
    schema: Schema | None

    @cached_property
    def serving_instances(self) -> tuple[Instance, ...]:
        """The instances that may get traffic."""
        return tuple(instance for instance in self.instances if instance.serving)

    @property
    def serving(self) -> bool:
        """Whether at least one instance serves."""
        return any(instance.serving for instance in self.instances)


@dataclass(frozen=True)
class Method:
    """An RPC the gateway can route, and the mesh service that serves it.

    ``service`` is the mesh service's name; look its instances up in the current
    snapshot, since a ``Method`` outlives health changes. ``comments`` are those of its
    contract (:attr:`gateway.schemas.Schema.comments`): the RPC's, its messages' and
    their fields', by full name.
    """

    service: str
    descriptor: descriptor.MethodDescriptor
    comments: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def full_name(self) -> str:
        """``pkg.Service.Method``."""
        return self.descriptor.full_name

    @property
    def comment(self) -> str:
        """The RPC's leading comment in its proto, or ``""``."""
        return self.comments.get(self.full_name, "")

    @cached_property
    def path(self) -> str:
        """The HTTP/2 path of the RPC, ``/pkg.Service/Method``."""
        return f"/{self.descriptor.containing_service.full_name}/{self.descriptor.name}"

    @property
    def client_streaming(self) -> bool:
        """Whether the client sends a stream of messages."""
        return self.descriptor.client_streaming

    @property
    def server_streaming(self) -> bool:
        """Whether the server answers with a stream of messages."""
        return self.descriptor.server_streaming

    @cached_property
    def access(self) -> options_pb2.Access.ValueType:
        """Who may call it through the gateway (``plugmesh.options.v1.access``); an RPC
        that declares nothing is ACCESS_UNSPECIFIED, to be treated as AUTHENTICATED."""
        options = self.descriptor.GetOptions()
        if not options.HasExtension(options_pb2.access):
            return options_pb2.ACCESS_UNSPECIFIED
        return options.Extensions[options_pb2.access]

    @cached_property
    def safe(self) -> bool:
        """Whether ``idempotency_level`` is NO_SIDE_EFFECTS or IDEMPOTENT: safe to retry."""
        return is_safe_to_retry(self.descriptor)


def method_key(name: str) -> str:
    """Normalise ``/pkg.Service/Method`` or ``pkg.Service.Method`` to the latter.

    >>> method_key("/a.v1.S/Get")
    'a.v1.S.Get'
    """
    return name.lstrip("/").replace("/", ".")


@dataclass(frozen=True)
class Snapshot:
    """The whole catalog at one moment. Build with :func:`build_snapshot`."""

    services: Mapping[str, Service] = field(default_factory=lambda: MappingProxyType({}))
    methods_by_name: Mapping[str, Method] = field(default_factory=lambda: MappingProxyType({}))
    owners: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Full gRPC service name → name of the mesh service serving it."""
    generation: int = 0
    schema_generation: int = 0

    def method(self, name: str) -> Method | None:
        """The method called ``/pkg.Service/Method`` or ``pkg.Service.Method``, if served."""
        return self.methods_by_name.get(method_key(name))

    def methods(self) -> tuple[Method, ...]:
        """Every served method, ordered by full name."""
        return tuple(self.methods_by_name[name] for name in sorted(self.methods_by_name))

    def service(self, name: str) -> Service | None:
        """A mesh service by its short name ("users")."""
        return self.services.get(name)

    def service_of(self, grpc_service: str) -> Service | None:
        """The mesh service serving the gRPC service ``pkg.Service``."""
        owner = self.owners.get(grpc_service)
        return None if owner is None else self.services.get(owner)


def build_snapshot(services: Mapping[str, Service], previous: Snapshot) -> Snapshot:
    """Return the snapshot holding ``services``, reusing ``previous``'s method index when
    no contract changed."""
    generation = previous.generation + 1
    if _contracts(services) == _contracts(previous.services):
        return Snapshot(
            MappingProxyType(dict(services)),
            previous.methods_by_name,
            previous.owners,
            generation,
            previous.schema_generation,
        )
    methods: dict[str, Method] = {}
    owners: dict[str, str] = {}
    for name in sorted(services):
        service = services[name]
        if service.schema is None:
            continue
        for grpc_service in service.grpc_services:
            found = service.schema.service(grpc_service)
            if found is None or grpc_service in owners:
                continue
            owners[grpc_service] = name
            for method in found.methods:
                methods[method.full_name] = Method(name, method, service.schema.comments)
    return Snapshot(
        MappingProxyType(dict(services)),
        MappingProxyType(methods),
        MappingProxyType(owners),
        generation,
        previous.schema_generation + 1,
    )


def _contracts(
    services: Mapping[str, Service],
) -> frozenset[tuple[str, tuple[str, ...], str | None]]:
    return frozenset(
        (s.name, s.grpc_services, s.schema.digest if s.schema else None) for s in services.values()
    )
