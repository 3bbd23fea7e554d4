"""Who owns what: a service may not claim another service's gRPC services or HTTP routes."""

from __future__ import annotations

from collections.abc import Iterable

from meshkit.errors import AlreadyExists
from registry.model import ServiceSpec
from registry.schemas import normalize_path

#: gRPC services that many plugins serve, each as itself: the gateway calls each
#: plugin's by the plugin's name and never routes them (the MCP front's tool-call hooks).
SHARED_GRPC_SERVICES = frozenset({"plugmesh.mcp.v1.ToolCallHookService"})


def check_conflicts(spec: ServiceSpec, registered: Iterable[ServiceSpec]) -> None:
    """Refuse ``spec`` when another service owns one of its gRPC services (but those of
    :data:`SHARED_GRPC_SERVICES`) or routes.

    Routes conflict when their methods are equal and their path templates are equal with
    variable names erased (see :func:`~registry.schemas.normalize_path`).

    Raises:
        AlreadyExists: with reason SERVICE_CONFLICT or ROUTE_CONFLICT and metadata naming
            the gRPC service or the method, path and RPC, and the owning service.
    """
    for other in registered:
        if other.name == spec.name:
            continue
        for grpc_service in spec.grpc_services:
            if grpc_service in other.grpc_services and grpc_service not in SHARED_GRPC_SERVICES:
                raise AlreadyExists(
                    f"gRPC service {grpc_service} is already served by service {other.name!r}",
                    reason="SERVICE_CONFLICT",
                    metadata={"grpc_service": grpc_service, "owner": other.name},
                )
        owned = {(r.method, normalize_path(r.path)): r for r in other.routes}
        for route in spec.routes:
            taken = owned.get((route.method, normalize_path(route.path)))
            if taken is not None:
                raise AlreadyExists(
                    f"HTTP route {route.method} {route.path} of {route.rpc} is already "
                    f"served by service {other.name!r} "
                    f"({taken.method} {taken.path} of {taken.rpc})",
                    reason="ROUTE_CONFLICT",
                    metadata={
                        "method": route.method,
                        "path": route.path,
                        "rpc": route.rpc,
                        "owner": other.name,
                        "owner_path": taken.path,
                        "owner_rpc": taken.rpc,
                    },
                )
