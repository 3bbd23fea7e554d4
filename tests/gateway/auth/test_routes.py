"""Every route of the live route table, and every method at the gRPC ingress, against
the access its proto declares: anonymous, a plain machine token, a person, an admin."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.access import access_of
from gateway.http.routes import HttpRoute
from gateway.http.template import SegmentKind
from gateway.model import Method
from meshkit.errors import error_info
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.options.v1 import options_pb2
from tests.gateway.auth.mesh import SECRET, Mesh, person_jwt
from tests.support.calls import call_empty

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

GATEWAY = "gateway.plugmesh"
PUBLIC, ADMIN, INTERNAL = (
    options_pb2.ACCESS_PUBLIC,
    options_pb2.ACCESS_ADMIN,
    options_pb2.ACCESS_INTERNAL,
)


def sample_path(route: HttpRoute[Any]) -> str:
    """A concrete path the route matches: every variable or glob segment is ``x``."""
    parts = [s.literal if s.kind is SegmentKind.LITERAL else "x" for s in route.template.segments]
    verb = f":{route.template.verb}" if route.template.verb else ""
    return "/" + "/".join(parts) + verb


def routes(auth_mesh: Mesh) -> list[HttpRoute[Method]]:
    """The gateway's live HTTP routes."""
    app = auth_mesh.gateway._http_app  # the app the gateway serves
    assert app is not None
    return list(app.routes.routes)


async def probe(auth_mesh: Mesh, route: HttpRoute[Any], headers: dict[str, str]) -> Any:
    """Call ``route`` with ``headers`` and a short deadline (streams end quickly)."""
    body = b"{}" if route.http_method in ("POST", "PUT", "PATCH") else None
    return await auth_mesh.http.request(
        route.http_method,
        sample_path(route),
        content=body,
        headers={**headers, "grpc-timeout": "2S"},
    )


async def test_the_route_table_covers_every_plugin(auth_mesh: Mesh) -> None:
    services = {route.method.service for route in routes(auth_mesh)}

    assert {"registry", "machine-users", "users", "audit"} <= services
    # INTERNAL methods get no route at all.
    assert not [r for r in routes(auth_mesh) if access_of(r.rpc) == INTERNAL]


async def test_every_route_needs_a_token_unless_it_is_public(auth_mesh: Mesh) -> None:
    wrong: list[str] = []
    for route in routes(auth_mesh):
        response = await probe(auth_mesh, route, {})
        public = access_of(route.rpc) == PUBLIC
        if public == (response.status_code == 401):
            wrong.append(f"{route.label}: {response.status_code}")
            continue
        if not public:
            status = response.json()
            assert status["code"] == 16
            assert status["details"][0]["reason"] == "AUTHENTICATION_REQUIRED"
            assert response.headers["www-authenticate"] == 'Bearer realm="plugmesh"'
    assert wrong == []


@pytest.mark.parametrize("who", ["machine", "person"])
async def test_admin_routes_answer_403_to_callers_who_are_not_admins(
    auth_mesh: Mesh, who: str
) -> None:
    token = auth_mesh.user_token if who == "machine" else person_jwt("someone-plain")
    wrong: list[str] = []
    for route in routes(auth_mesh):
        response = await probe(auth_mesh, route, auth_mesh.bearer(token))
        admin = access_of(route.rpc) == ADMIN
        refused_here = response.status_code == 403 and _info(response)["domain"] == GATEWAY
        if admin != refused_here or response.status_code == 401:
            wrong.append(f"{route.label}: {response.status_code} {response.text[:120]}")
        elif admin:
            assert _info(response)["reason"] == "ADMIN_REQUIRED"
    assert wrong == []


def _info(response: Any) -> dict[str, Any]:
    details: list[dict[str, Any]] = response.json()["details"]
    return details[0] if details else {"domain": "", "reason": ""}


async def test_an_admin_token_passes_every_route(auth_mesh: Mesh) -> None:
    wrong: list[str] = []
    for route in routes(auth_mesh):
        response = await probe(auth_mesh, route, auth_mesh.bearer(auth_mesh.admin_token))
        if response.status_code in (401, 403):
            wrong.append(f"{route.label}: {response.status_code} {response.text[:120]}")
    assert wrong == []


def _ingress_methods(auth_mesh: Mesh) -> list[Method]:
    return [m for m in auth_mesh.gateway.catalog.methods() if not m.client_streaming]


async def _call(auth_mesh: Mesh, method: Method, metadata: tuple[tuple[str, str], ...]) -> str:
    """Call ``method`` with an empty request through the ingress: ``"through"`` when the
    gateway let it pass (whatever the plugin answered), else the gateway's refusal."""
    error = await call_empty(
        auth_mesh.channel, method.path, server_streaming=method.server_streaming, metadata=metadata
    )
    info = error_info(error) if error is not None else None
    if error is not None and info is not None and info.domain == GATEWAY:
        return error.code().name
    return "through"


async def test_the_ingress_enforces_the_same_access(auth_mesh: Mesh) -> None:
    plain = (("authorization", f"Bearer {auth_mesh.user_token}"),)
    admin = (("authorization", f"Bearer {auth_mesh.admin_token}"),)
    denied, unauthenticated, through = "PERMISSION_DENIED", "UNAUTHENTICATED", "through"
    expected = {
        PUBLIC: (through, through, through),
        options_pb2.ACCESS_AUTHENTICATED: (unauthenticated, through, through),
        ADMIN: (unauthenticated, denied, through),
        INTERNAL: (denied, denied, denied),
    }
    wrong: list[str] = []
    for method in _ingress_methods(auth_mesh):
        got = (
            await _call(auth_mesh, method, ()),
            await _call(auth_mesh, method, plain),
            await _call(auth_mesh, method, admin),
        )
        if got != expected[access_of(method.descriptor)]:
            wrong.append(f"{method.full_name}: {got}")
    assert wrong == []


async def test_a_mesh_service_with_the_secret_may_call_internal_methods(auth_mesh: Mesh) -> None:
    method = auth_mesh.gateway.catalog.method("plugmesh.registry.v1.RegistryService.RenewLease")
    assert method is not None

    with_secret = await _call(auth_mesh, method, ((SECRET_METADATA_KEY, SECRET),))
    wrong_secret = await _call(auth_mesh, method, ((SECRET_METADATA_KEY, "guess"),))

    assert (with_secret, wrong_secret) == ("through", "PERMISSION_DENIED")
