"""Calls through the gateway of the hook tests, and what the audit log says of them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from gateway.app import Gateway
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.support.waiting import eventually

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


async def caller(mesh: Mesh) -> tuple[str, str]:
    """A new machine user that may call every tool of ``up``: its id and token."""
    rules = [users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="up/*")]
    created = await mesh.create_machine_user(
        f"hooked-{uuid.uuid4().hex[:8]}", permissions=users_pb2.Permissions(rules=rules)
    )
    return created.machine_user.machine_user_id, created.token


async def call(
    gateway: Gateway, token: str, tool: str, arguments: dict[str, Any], mode: str = MODERN
) -> dict[str, Any]:
    """Call ``up__<tool>``: the result as JSON."""
    async with connected(f"http://{gateway.http_address}/mcp", token, mode) as client:
        result = await client.call_tool(f"up__{tool}", arguments)
    return result.model_dump(mode="json", by_alias=True, exclude_none=True)


def text(result: Mapping[str, Any]) -> str:
    return "".join(c.get("text", "") for c in result["content"] if c["type"] == "text")


async def ending(mesh: Mesh, actor: str) -> dict[str, Any]:
    """The details of the audit entry that ended ``actor``'s one call."""
    admin = mesh.bearer(mesh.admin_token)

    async def ended() -> dict[str, Any] | None:
        response = await mesh.http.get(
            "/v1/audit/entries",
            params={"action": "tool.call.*", "userId": actor, "pageSize": 10},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        entries = response.json().get("entries", [])
        endings = [e for e in entries if e["action"] != "tool.call.started"]
        return endings[0]["details"] if len(entries) == 2 and endings else None

    found: dict[str, Any] = await eventually(ended, timeout_seconds=30, what="the call audited")
    return found


def decisions(details: Mapping[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(hook, phase, verdict, applied) of each decision, in order, without prefixes."""
    return [
        (
            d["hook"],
            d["phase"].removeprefix("HOOK_PHASE_"),
            d["verdict"].removeprefix("HOOK_VERDICT_"),
            d.get("applied", False),
        )
        for d in details.get("decisions", [])
    ]


def error_info(details: Mapping[str, Any]) -> dict[str, Any]:
    (info,) = [d for d in details["error"]["details"] if d["@type"] == ERROR_INFO]
    return dict(info)
