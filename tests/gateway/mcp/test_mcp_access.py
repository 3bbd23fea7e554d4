"""Who may call the MCP endpoint: the HTTP API's bearer credentials; everyone else gets
401 pointing at the protected resource metadata, and is recorded as ``auth.failed``.
The endpoint refuses foreign ``Host`` and ``Origin`` values (DNS rebinding)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from plugmesh.events.v1 import auth_events_pb2
from services.machineusers import tokens
from tests.gateway.auth.failures import published
from tests.gateway.auth.mesh import Mesh, person_jwt
from tests.gateway.mcp.clients import ACCEPT, MODERN_META, modern_headers, request
from tests.gateway.mcp.conftest import ISSUER, Front

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

LIST = request("tools/list", {"_meta": MODERN_META})


@pytest.mark.parametrize("path", ["/mcp", "/mcp/s/beta"])
async def test_a_request_without_a_token_is_401_pointing_at_the_metadata(
    front: Front, path: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(front.base + path, json=request("tools/list"), headers=ACCEPT)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{front.base}/.well-known/oauth-protected-resource/mcp"'
    )
    body = response.json()
    assert (body["jsonrpc"], body["id"]) == ("2.0", None)
    assert body["error"]["data"] == {"reason": "AUTHENTICATION_REQUIRED"}


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        pytest.param(lambda: tokens.issue().token, "UNKNOWN_TOKEN", id="unknown-machine-token"),
        pytest.param(
            lambda: person_jwt("eve", iss="https://elsewhere.example"),
            "INVALID_CLAIMS",
            id="jwt-of-another-issuer",
        ),
    ],
)
async def test_a_refused_token_is_401_invalid_token_and_recorded_as_auth_failed(
    auth_mesh: Mesh, front: Front, token: Callable[[], str], reason: str
) -> None:
    credential = token()
    request_id = str(uuid.uuid4())
    headers = {**ACCEPT, **auth_mesh.bearer(credential), "x-request-id": request_id}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(front.url, json=request("tools/list"), headers=headers)
    payload, raw = await published(auth_mesh, request_id)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{front.base}/.well-known/oauth-protected-resource/mcp",'
        ' error="invalid_token"'
    )
    assert response.json()["error"]["data"] == {"reason": reason}
    assert (payload.http_method, payload.http_path, payload.rpc) == ("POST", "/mcp", "")
    assert payload.reason != auth_events_pb2.AUTH_FAILURE_REASON_UNSPECIFIED
    assert credential.rpartition(".")[2].encode() not in raw


async def test_a_machine_token_is_accepted(auth_mesh: Mesh, front: Front) -> None:
    headers = modern_headers(auth_mesh.user_token, "tools/list")
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(front.url, json=LIST, headers=headers)

    assert response.status_code == 200, response.text
    assert response.json()["result"]["tools"]


@pytest.mark.parametrize(
    "path",
    ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"],
)
async def test_the_protected_resource_metadata_names_the_endpoint_and_the_issuer(
    front: Front, path: str
) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(front.base + path)

    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == front.url
    assert document["authorization_servers"] == [ISSUER]
    assert document["bearer_methods_supported"] == ["header"]


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param({"Host": "evil.example"}, 421, id="foreign-host"),
        pytest.param({"Origin": "http://evil.example"}, 403, id="foreign-origin"),
        pytest.param({"Origin": "http://localhost:3000"}, 200, id="loopback-origin"),
    ],
)
async def test_foreign_hosts_and_origins_are_refused(
    auth_mesh: Mesh, front: Front, extra: dict[str, str], status: int
) -> None:
    headers = {**modern_headers(auth_mesh.admin_token, "tools/list"), **extra}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(front.url, json=LIST, headers=headers)

    assert response.status_code == status, response.text


async def test_a_foreign_host_cannot_open_the_legacy_get_stream(
    auth_mesh: Mesh, front: Front
) -> None:
    headers = {**ACCEPT, **auth_mesh.bearer(auth_mesh.admin_token), "Host": "evil.example"}
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(front.url, headers=headers)

    assert response.status_code == 421
