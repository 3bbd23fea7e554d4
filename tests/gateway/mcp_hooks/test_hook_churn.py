"""Hooks come and go while the gateway serves: calls made meanwhile each end cleanly (the
upstream's answer or a hook's refusal, never an error) and are each audited once, and a
client is told its tool list changed when a FilterTools hook comes or goes."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from mcp.shared.subscriptions import ToolsListChanged

from gateway.app import Gateway
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp_hooks.calls import caller, text
from tests.gateway.mcp_hooks.conftest import FILTER, PRE, hooks, plan
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]


async def test_calls_made_while_hooks_come_and_go_each_end_cleanly_and_are_audited_once(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)
    url = f"http://{gateway.http_address}/mcp"
    outcomes: list[str] = []
    churned = asyncio.Event()

    async def calling() -> None:
        async with connected(url, token, MODERN) as client:
            while not churned.is_set():
                result = await client.call_tool("up__echo", {"text": "x"})
                answer = result.model_dump(by_alias=True, exclude_none=True)
                outcomes.append("denied" if answer.get("isError") else text(answer))
                await asyncio.sleep(0.02)

    async def churning() -> None:
        for _ in range(2):
            async with hooks(auth_mesh, gateway, plan("hook-churn", PRE, pre={"deny": "no"})):
                await asyncio.sleep(0.5)
            await asyncio.sleep(0.5)
        churned.set()

    await asyncio.gather(calling(), calling(), churning())

    calls = len(outcomes)
    # Both while the hook was there and while it was not; nothing else.
    assert set(outcomes) == {"denied", "echo:x"}
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    async def audited() -> Counter[str] | None:
        response = await auth_mesh.http.get(
            "/v1/audit/entries",
            params={"action": "tool.call.*", "userId": actor, "pageSize": 1000},
            headers=admin,
        )
        entries = response.json().get("entries", [])
        return Counter(e["action"] for e in entries) if len(entries) >= 2 * calls else None

    actions = await eventually(audited, timeout_seconds=30, what="every call audited")
    assert actions["tool.call.started"] == calls
    assert actions["tool.call.completed"] + actions["tool.call.failed"] == calls
    assert actions["tool.call.failed"] == outcomes.count("denied")


async def test_a_listening_client_hears_when_a_filter_hook_comes_and_goes(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    url = f"http://{gateway.http_address}/mcp"
    async with (
        connected(url, auth_mesh.admin_token, MODERN) as client,
        client.listen(tools_list_changed=True) as subscription,
    ):
        heard = aiter(subscription)
        async with hooks(auth_mesh, gateway, plan("hook-filter", FILTER, hide=("up/add",))):
            came = await asyncio.wait_for(anext(heard), 10)
        went = await asyncio.wait_for(anext(heard), 10)

    assert isinstance(came, ToolsListChanged)
    assert isinstance(went, ToolsListChanged)
