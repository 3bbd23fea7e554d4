"""Bad input gets a JSON-RPC error, never a 500, in both eras. Raw HTTP: the SDK's client
would turn an HTTP 404 into ``-32601`` itself, so an unknown method must be read off the
wire."""

from __future__ import annotations

import json
from typing import Any

import httpx
import mcp.types as types
import pytest

from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import ACCEPT, MODERN_META, answer, modern_headers, request
from tests.gateway.mcp.conftest import Front

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

LIST = request("tools/list", {"_meta": MODERN_META})
_CALL_PARAMS = {"name": "alpha__echo", "_meta": MODERN_META}
TOO_BIG = json.dumps(
    request("tools/call", {**_CALL_PARAMS, "arguments": {"text": "x" * (5 * 1024 * 1024)}})
)

# (era, body (str: sent as is), Mcp-Method, Mcp-Name, HTTP status, JSON-RPC code)
CASES = [
    pytest.param(
        "modern", "{not json", "tools/list", None, 400, types.PARSE_ERROR, id="modern-malformed"
    ),
    pytest.param(
        "modern", [LIST, LIST], "tools/list", None, 400, types.INVALID_REQUEST, id="modern-batch"
    ),
    pytest.param(
        "modern",
        {"id": 1, "method": "tools/list"},
        "tools/list",
        None,
        400,
        types.INVALID_REQUEST,
        id="modern-not-json-rpc",
    ),
    pytest.param(
        "modern",
        request("foo/bar", {"_meta": MODERN_META}),
        "foo/bar",
        None,
        404,
        types.METHOD_NOT_FOUND,
        id="modern-unknown-method",
    ),
    pytest.param(
        "modern",
        request("tools/call", {**_CALL_PARAMS, "arguments": "text"}),
        "tools/call",
        "alpha__echo",
        400,
        types.INVALID_PARAMS,
        id="modern-wrong-argument-type",
    ),
    pytest.param(
        "modern", TOO_BIG, "tools/call", "alpha__echo", 413, types.INVALID_REQUEST, id="modern-5mb"
    ),
    pytest.param("legacy", "{not json", None, None, 400, types.PARSE_ERROR, id="legacy-malformed"),
    pytest.param(
        "legacy",
        [request("tools/list"), request("tools/list")],
        None,
        None,
        400,
        types.INVALID_PARAMS,  # the SDK's legacy transport says -32602 for a batch
        id="legacy-batch",
    ),
    pytest.param(
        "legacy", request("foo/bar"), None, None, 200, types.METHOD_NOT_FOUND, id="legacy-unknown"
    ),
    pytest.param(
        "legacy",
        request("tools/call", {"name": "alpha__echo", "arguments": "text"}),
        None,
        None,
        200,
        types.INVALID_PARAMS,
        id="legacy-wrong-argument-type",
    ),
    pytest.param("legacy", TOO_BIG, None, None, 413, types.INVALID_REQUEST, id="legacy-5mb"),
]


@pytest.mark.parametrize(("era", "body", "method", "name", "status", "code"), CASES)
async def test_bad_input_gets_a_json_rpc_error(
    auth_mesh: Mesh,
    front: Front,
    era: str,
    body: Any,
    method: str | None,
    name: str | None,
    status: int,
    code: int,
) -> None:
    if era == "modern":
        assert method is not None
        headers = modern_headers(auth_mesh.admin_token, method, name)
    else:
        headers = {**ACCEPT, **auth_mesh.bearer(auth_mesh.admin_token)}
    content = body if isinstance(body, str) else json.dumps(body)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(front.url, content=content, headers=headers)

    assert response.status_code == status, response.text
    error = answer(response)["error"]
    assert error["code"] == code, error


async def test_the_endpoint_still_serves_after_bad_input(auth_mesh: Mesh, front: Front) -> None:
    headers = modern_headers(auth_mesh.admin_token, "tools/list")
    async with httpx.AsyncClient(timeout=10) as http:
        await http.post(front.url, content="{not json", headers=headers)
        response = await http.post(front.url, json=LIST, headers=headers)

    assert response.status_code == 200
    assert response.json()["result"]["tools"]
