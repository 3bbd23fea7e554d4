"""The console's "your tools" API on a running mesh: any signed-in caller learns which
MCP tools the front lists to them and which rule allows each, and gets any server/tool
explained as ``tools/call`` decides it; the list is the front's own ``tools/list``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from plugmesh.users.v1 import users_pb2
from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN_META, answer, modern_headers, request
from tests.support.web_upstream import web_upstream

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

auth_mesh = _auth_fixtures.auth_mesh


def _rules(*rules: tuple[users_pb2.Effect.ValueType, str, str]) -> users_pb2.Permissions:
    return users_pb2.Permissions(
        rules=[
            users_pb2.PermissionRule(effect=effect, pattern=pattern, description=description)
            for effect, pattern, description in rules
        ]
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_mesh(auth_mesh: Mesh) -> AsyncIterator[Mesh]:
    """The auth mesh with the test MCP server as upstream ``web``, READY."""
    async with web_upstream(auth_mesh):
        yield auth_mesh


async def _machine_token(mesh: Mesh, name: str, permissions: users_pb2.Permissions) -> str:
    created = await mesh.create_machine_user(name, permissions=permissions)
    return created.token


async def _tools(mesh: Mesh, token: str) -> Any:
    response = await mesh.http.get("/console/api/tools", headers=mesh.bearer(token))
    assert response.status_code == 200, response.text
    return response.json()["tools"]


async def test_a_machine_user_sees_only_the_tools_its_rules_allow_and_why(web_mesh: Mesh) -> None:
    token = await _machine_token(
        web_mesh,
        "reader",
        _rules(
            (users_pb2.EFFECT_ALLOW, "web/e*", "the e tools"),
            (users_pb2.EFFECT_DENY, "web/ev*", "but not events"),
        ),
    )

    tools = await _tools(web_mesh, token)

    assert [(tool["server"], tool["tool"], tool["name"]) for tool in tools] == [
        ("web", "echo", "web__echo"),
        ("web", "env", "web__env"),
    ]
    assert tools[0]["decision"] == {
        "allowed": True,
        "reason": "DECISION_REASON_RULE",
        "matchedRule": {
            "index": 0,
            "rule": {
                "effect": "EFFECT_ALLOW",
                "pattern": "web/e*",
                "description": "the e tools",
            },
        },
    }


async def test_the_list_is_what_the_mcp_front_lists_to_the_same_caller(web_mesh: Mesh) -> None:
    token = await _machine_token(web_mesh, "adder", _rules((users_pb2.EFFECT_ALLOW, "web/a*", "")))
    web_mesh.bearer(token)  # remembered for the leak scan
    listed = await web_mesh.http.post(
        "/mcp",
        json=request("tools/list", {"_meta": MODERN_META}),
        headers=modern_headers(token, "tools/list"),
    )
    assert listed.status_code == 200, listed.text

    tools = await _tools(web_mesh, token)

    front = sorted(tool["name"] for tool in answer(listed)["result"]["tools"])
    assert [tool["name"] for tool in tools] == front == ["web__add"]


@pytest.mark.parametrize(
    ("target", "allowed", "reason"),
    [
        ("web/echo", True, "DECISION_REASON_RULE"),
        ("web/add", False, "DECISION_REASON_RULE"),
        ("other/echo", False, "DECISION_REASON_DEFAULT_DENY"),
    ],
    ids=["allowed-by-rule", "denied-by-rule", "denied-by-default"],
)
async def test_a_decision_is_explained_for_the_caller_itself(
    web_mesh: Mesh, target: str, allowed: bool, reason: str
) -> None:
    token = await _machine_token(
        web_mesh,
        f"explained-{target.replace('/', '-')}",
        _rules((users_pb2.EFFECT_ALLOW, "web/*", ""), (users_pb2.EFFECT_DENY, "web/add", "")),
    )

    response = await web_mesh.http.get(
        "/console/api/decision", params={"tool": target}, headers=web_mesh.bearer(token)
    )

    assert response.status_code == 200, response.text
    assert (response.json()["allowed"], response.json()["reason"]) == (allowed, reason)


async def test_an_admin_is_allowed_every_tool_by_the_admin_flag(web_mesh: Mesh) -> None:
    token = await _machine_token(web_mesh, "root-tools", users_pb2.Permissions(admin=True))

    tools = await _tools(web_mesh, token)

    assert {tool["tool"] for tool in tools} >= {"echo", "add", "env"}
    assert {tool["decision"]["reason"] for tool in tools} == {"DECISION_REASON_ADMIN"}


@pytest.mark.parametrize("target", ["", "web", "/echo", "web/"], ids=repr)
async def test_a_decision_without_a_server_and_a_tool_is_refused_with_400(
    web_mesh: Mesh, target: str
) -> None:
    response = await web_mesh.http.get(
        "/console/api/decision",
        params={"tool": target},
        headers=web_mesh.bearer(web_mesh.user_token),
    )

    assert response.status_code == 400
    assert response.json()["details"][0]["metadata"]["field"] == "tool"


async def test_an_anonymous_caller_is_refused_with_401(web_mesh: Mesh) -> None:
    response = await web_mesh.http.get("/console/api/tools")

    assert response.status_code == 401
