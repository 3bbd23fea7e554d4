"""Every HTTP route of the live route table and every method at the gRPC ingress,
probed as every kind of caller (tests/security/credentials.py): each must be refused or
let through exactly as the access its proto declares says."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from gateway.auth.access import access_of
from gateway.http.routes import HttpRoute
from gateway.http.template import SegmentKind
from gateway.model import Method
from tests.gateway.auth.mesh import Mesh
from tests.security.credentials import Caller, Callers
from tests.security.expected import at_the_gateway
from tests.security.probes import PROBES, grpc_outcome, http_outcome
from tests.support.calls import call_empty

#: The services whose methods the probes must reach.
SERVICES = {"registry", "machine-users", "users", "audit"}

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


def _routes(mesh: Mesh) -> list[HttpRoute[Method]]:
    app = mesh.gateway._http_app  # the app the gateway serves
    assert app is not None
    return list(app.routes.routes)


def _sample_path(route: HttpRoute[Any]) -> str:
    parts = [s.literal if s.kind is SegmentKind.LITERAL else "x" for s in route.template.segments]
    verb = f":{route.template.verb}" if route.template.verb else ""
    return "/" + "/".join(parts) + verb


@pytest.mark.parametrize("caller", list(Caller), ids=lambda c: c.value)
async def test_every_http_route_refuses_or_admits_the_caller_as_its_proto_declares(
    auth_mesh: Mesh, callers: Callers, caller: Caller
) -> None:
    routes = _routes(auth_mesh)
    wrong: list[str] = []
    for route in routes:
        body = b"{}" if route.http_method in ("POST", "PUT", "PATCH") else None
        response = await auth_mesh.http.request(
            route.http_method,
            _sample_path(route),
            content=body,
            headers={**callers.headers(caller), "grpc-timeout": "2S"},
        )
        PROBES["http"] += 1
        expected = at_the_gateway(access_of(route.rpc), caller)
        if http_outcome(response) != expected:
            wrong.append(f"{route.label}: {response.status_code}, expected {expected}")

    assert {r.method.service for r in routes} >= SERVICES, "every plugin routed"
    assert wrong == []


async def _call(
    channel: grpc.aio.Channel, method: Method, metadata: tuple[tuple[str, str], ...]
) -> str:
    """Call ``method`` with an empty request: what the gateway did with it."""
    return grpc_outcome(
        await call_empty(
            channel, method.path, server_streaming=method.server_streaming, metadata=metadata
        )
    )


@pytest.mark.parametrize("caller", list(Caller), ids=lambda c: c.value)
async def test_every_grpc_method_refuses_or_admits_the_caller_as_its_proto_declares(
    auth_mesh: Mesh, callers: Callers, caller: Caller
) -> None:
    methods = [m for m in auth_mesh.gateway.catalog.methods() if not m.client_streaming]
    wrong: list[str] = []
    for method in methods:
        got = await _call(auth_mesh.channel, method, callers.metadata(caller))
        PROBES["grpc"] += 1
        expected = at_the_gateway(access_of(method.descriptor), caller)
        if got != expected:
            wrong.append(f"{method.full_name}: {got}, expected {expected}")

    assert {m.service for m in methods} >= SERVICES, "every plugin served"
    assert wrong == []
