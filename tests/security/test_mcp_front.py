"""The MCP front probed as every kind of caller (tests/security/credentials.py): every
MCP method on every endpoint needs a token the gateway knows (forged identity metadata
counts for nothing); a caller sees and calls only the tools its rules allow, and the
tools of admin-only RPCs only as an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from gateway.app import Gateway
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import ACCEPT, MODERN, MODERN_META, answer, request
from tests.gateway.mcp.federating import UP, federating
from tests.security.credentials import Caller, Callers
from tests.security.probes import PROBES
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

#: Every endpoint: all servers at once, one upstream's, one plugin's.
ENDPOINTS = ("/mcp", f"/mcp/s/{UP}", "/mcp/s/audit")
#: Request methods of the current revision, with params: the front serves tools (and
#: discovery); it answers the rest "method not found", but only to a caller it knows.
METHODS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("server/discover", {}),
    ("ping", {}),
    ("tools/list", {}),
    ("tools/call", {"name": "nothing-here", "arguments": {}}),
    ("resources/list", {}),
    ("resources/templates/list", {}),
    ("resources/read", {"uri": "file:///nothing-here"}),
    ("prompts/list", {}),
    ("prompts/get", {"name": "nothing-here"}),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "x"}, "argument": {}}),
)
#: A tool of an admin-only RPC (AuditService.VerifyAuditChain).
ADMIN_ONLY_TOOL = "audit__verify_audit_chain"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh, callers: Callers) -> AsyncIterator[Gateway]:
    """A gateway federating ``up`` beside the plugins' tools, once the admin sees both."""
    async with federating(auth_mesh) as running:

        async def offered() -> bool | None:
            names = await _listed(running, callers, Caller.ADMIN, "/mcp")
            return (
                ADMIN_ONLY_TOOL in names and any(n.startswith(f"{UP}__") for n in names)
            ) or None

        await eventually(offered, timeout_seconds=30, what="up's and the plugins' tools listed")
        yield running


async def _post(
    gateway: Gateway,
    callers: Callers,
    caller: Caller,
    path: str,
    method: str,
    params: dict[str, Any],
) -> httpx.Response:
    headers = {
        **ACCEPT,
        **callers.headers(caller),
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": method,
    }
    if method == "tools/call" or method == "prompts/get":
        headers["Mcp-Name"] = params["name"]
    body = request(method, {**params, "_meta": MODERN_META})
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"http://{gateway.http_address}{path}", json=body, headers=headers
        )
    PROBES["mcp"] += 1
    return response


async def _listed(gateway: Gateway, callers: Callers, caller: Caller, path: str) -> set[str]:
    """The names of the tools ``caller`` sees on ``path``, every page."""
    names: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"cursor": cursor} if cursor else {}
        response = await _post(gateway, callers, caller, path, "tools/list", params)
        assert response.status_code == 200, response.text
        result = answer(response)["result"]
        names |= {tool["name"] for tool in result["tools"]}
        cursor = result.get("nextCursor")
        if not cursor:
            return names


@pytest.mark.parametrize("caller", [Caller.ANONYMOUS, Caller.DELETED, Caller.FORGED])
async def test_every_mcp_method_on_every_endpoint_is_401_without_a_known_token(
    gateway: Gateway, callers: Callers, caller: Caller
) -> None:
    wrong: list[str] = []
    for path in ENDPOINTS:
        for method, params in METHODS:
            response = await _post(gateway, callers, caller, path, method, params)
            if response.status_code != 401:
                wrong.append(f"{path} {method}: {response.status_code} {response.text[:120]}")
    assert wrong == []


@pytest.mark.parametrize("caller", [Caller.PLAIN, Caller.PLAIN_FORGED, Caller.ADMIN])
async def test_every_mcp_method_on_every_endpoint_gets_a_json_rpc_answer_with_a_known_token(
    gateway: Gateway, callers: Callers, caller: Caller
) -> None:
    wrong: list[str] = []
    for path in ENDPOINTS:
        for method, params in METHODS:
            response = await _post(gateway, callers, caller, path, method, params)
            if response.status_code in (401, 403) or "jsonrpc" not in answer(response):
                wrong.append(f"{path} {method}: {response.status_code} {response.text[:120]}")
    assert wrong == []


@pytest.mark.parametrize("caller", [Caller.ANONYMOUS, Caller.DELETED, Caller.FORGED])
async def test_a_handshake_era_initialize_is_401_without_a_known_token(
    gateway: Gateway, callers: Callers, caller: Caller
) -> None:
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "probe", "version": "0"},
    }
    wrong: list[str] = []
    for path in ENDPOINTS:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"http://{gateway.http_address}{path}",
                json=request("initialize", params),
                headers={**ACCEPT, **callers.headers(caller)},
            )
        PROBES["mcp"] += 1
        if response.status_code != 401:
            wrong.append(f"{path}: {response.status_code} {response.text[:120]}")
    assert wrong == []


@pytest.mark.parametrize("caller", [Caller.PLAIN, Caller.PLAIN_FORGED])
async def test_a_caller_without_rules_sees_no_tool_and_may_call_none_the_admin_sees(
    gateway: Gateway, callers: Callers, caller: Caller
) -> None:
    admins = {path: await _listed(gateway, callers, Caller.ADMIN, path) for path in ENDPOINTS}
    seen = {path: await _listed(gateway, callers, caller, path) for path in ENDPOINTS}
    called: list[str] = []
    for path, names in admins.items():
        for name in sorted(names):
            params = {"name": name, "arguments": {}}
            reply = answer(await _post(gateway, callers, caller, path, "tools/call", params))
            if "error" not in reply:
                called.append(f"{path} {name}")

    assert all(admins.values()), "the admin sees tools on every endpoint"
    assert seen == {path: set() for path in ENDPOINTS}
    assert called == []


async def test_a_tool_of_an_admin_only_rpc_is_offered_to_admins_only(
    auth_mesh: Mesh, gateway: Gateway, callers: Callers
) -> None:
    allowed = await auth_mesh.create_machine_user("probe-audit-reader", permissions=_audit_rules())
    reader = Callers({Caller.PLAIN: allowed.token})

    readers = await _listed(gateway, reader, Caller.PLAIN, "/mcp")
    reply = answer(
        await _post(gateway, reader, Caller.PLAIN, "/mcp", "tools/call", {"name": ADMIN_ONLY_TOOL})
    )
    admins = await _listed(gateway, callers, Caller.ADMIN, "/mcp")

    assert "audit__list_audit_entries" in readers
    assert ADMIN_ONLY_TOOL not in readers
    assert "error" in reply
    assert ADMIN_ONLY_TOOL in admins


def _audit_rules() -> Any:
    from plugmesh.users.v1 import users_pb2

    rule = users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="audit/*")
    return users_pb2.Permissions(rules=[rule])
