"""The routes view's data: every HTTP route and every gRPC method of the mesh, each with
who may call it (its declared ``(plugmesh.options.v1.access)``).

The HTTP routes are the gateway's own route table built from the same catalog snapshot
(:func:`gateway.http.routes.build_routes`, which ``/openapi.json`` is generated from too),
plus the gateway's fixed paths; the gRPC methods are every method of the catalog,
INTERNAL ones included (callable by mesh services only, so they have no HTTP route).
"""

from __future__ import annotations

from typing import Any

from gateway.auth.access import access_of
from gateway.catalog import Method, Snapshot
from gateway.http.routes import HttpRoute, build_routes
from plugmesh.options.v1 import options_pb2

__all__ = ["GATEWAY_PATHS", "RouteView"]

#: The gateway's fixed HTTP paths: ``(method, path, access, what it is)``.
GATEWAY_PATHS = (
    ("GET", "/healthz", "PUBLIC", "liveness"),
    ("GET", "/readyz", "PUBLIC", "readiness: the registry's state received"),
    ("GET", "/metrics", "PUBLIC", "Prometheus metrics"),
    ("GET", "/openapi.json", "PUBLIC", "OpenAPI 3 of the route table"),
    ("GET", "/docs", "PUBLIC", "Swagger UI"),
    ("POST", "/mcp", "AUTHENTICATED", "the MCP front (Streamable HTTP), every server"),
    ("POST", "/mcp/s/{server}", "AUTHENTICATED", "one upstream MCP server, its own tool names"),
    ("GET", "/console", "PUBLIC", "this console; its page and assets"),
    ("GET", "/console/api/me", "AUTHENTICATED", "the signed-in caller"),
    ("GET", "/console/api/mesh", "AUTHENTICATED", "the mesh, as Server-Sent Events"),
    ("GET", "/console/api/routes", "AUTHENTICATED", "this table"),
    ("GET", "/console/api/tools", "AUTHENTICATED", "the MCP tools the caller may call, and why"),
    ("GET", "/console/api/decision", "AUTHENTICATED", "may the caller call a server/tool, and why"),
    ("GET", "/console/api/mcp", "ADMIN", "changes of the served MCP tools, as SSE"),
    ("GET", "/console/api/events", "ADMIN", "the events as they are published, as SSE"),
    ("GET", "/console/api/deadletters", "ADMIN", "the dead letters"),
    ("POST", "/console/api/deadletters/{id}:replay", "ADMIN", "replay one dead letter"),
)


class RouteView:
    """Turns catalog snapshots into the routes view, rebuilt only when the methods change."""

    def __init__(self) -> None:
        self._cached: tuple[int, dict[str, Any]] | None = None

    def of(self, snapshot: Snapshot) -> dict[str, Any]:
        """``{"http": [...], "grpc": [...]}`` for ``snapshot``."""
        if self._cached is not None and self._cached[0] == snapshot.schema_generation:
            return self._cached[1]
        methods = snapshot.methods()
        table = build_routes(methods, snapshot.schema_generation)
        view = {
            "http": [
                *(_fixed(*path) for path in GATEWAY_PATHS),
                *(_http(route) for route in table.routes),
            ],
            "grpc": [_grpc(method) for method in methods],
        }
        self._cached = (snapshot.schema_generation, view)
        return view


def _access(method: Method) -> str:
    return options_pb2.Access.Name(access_of(method.descriptor)).removeprefix("ACCESS_")


def _fixed(http_method: str, path: str, access: str, summary: str) -> dict[str, Any]:
    return {
        "method": http_method,
        "path": path,
        "access": access,
        "rpc": "",
        "service": "gateway",
        "summary": summary,
    }


def _http(route: HttpRoute[Method]) -> dict[str, Any]:
    return {
        "method": route.http_method,
        "path": route.template.source,
        "access": _access(route.method),
        "rpc": route.method.full_name,
        "service": route.method.service,
        "summary": _first_line(route.method.comment),
    }


def _grpc(method: Method) -> dict[str, Any]:
    streaming = {
        (False, False): "unary",
        (False, True): "server streaming",
        (True, False): "client streaming",
        (True, True): "bidirectional",
    }[(method.client_streaming, method.server_streaming)]
    return {
        "path": method.path,
        "access": _access(method),
        "service": method.service,
        "streaming": streaming,
        "summary": _first_line(method.comment),
    }


def _first_line(comment: str) -> str:
    return comment.strip().split("\n", 1)[0]
