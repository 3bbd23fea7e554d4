"""Gateways of their own: two replicas behind one address serve clients of both eras
whose requests alternate between them; a stopping gateway ends its notification
streams; the limits of transcoded calls do not apply to MCP."""

from __future__ import annotations

import httpx
import mcp.types as types
import pytest

from gateway.http import HttpSettings
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import ACCEPT, ERAS, MODERN, connected, every_page, request
from tests.gateway.mcp.conftest import Front, running_front
from tests.gateway.mcp.proxy import RoundRobinProxy
from tests.support.waiting import until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest.mark.parametrize("mode", ERAS)
async def test_two_replicas_behind_one_address_serve_one_client_between_them(
    auth_mesh: Mesh, mode: str
) -> None:
    async with (
        running_front(auth_mesh, replica="a") as a,
        running_front(auth_mesh, replica="b") as b,
        RoundRobinProxy([a.gateway.http_address, b.gateway.http_address]) as proxy,
    ):
        url = f"http://{proxy.address}/mcp"
        async with connected(url, auth_mesh.admin_token, mode, fresh_connections=True) as client:
            pages = await every_page(client)
            echoes = [
                (await client.call_tool("alpha__echo", {"text": str(n)})).content for n in range(4)
            ]

    texts = [content[0].text for content in echoes if isinstance(content[0], types.TextContent)]
    assert [name for page in pages for name in page] == sorted(a.workbench.tools(None))
    # The pages were read across both replicas, cursors of one continued on the other.
    assert a.workbench.listings
    assert b.workbench.listings
    assert {text.partition(":")[0] for text in texts} == {"a", "b"}
    assert sorted(text.partition(":")[2] for text in texts) == ["0", "1", "2", "3"]


async def test_a_cancellation_sent_to_the_other_replica_cancels_the_call(auth_mesh: Mesh) -> None:
    headers = {**ACCEPT, **auth_mesh.bearer(auth_mesh.admin_token)}
    hello = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT}
    call = request(
        "tools/call",
        {"name": "alpha__slow", "arguments": {"steps": 1, "hold": True}, "_meta": PROGRESS},
        7,
    )
    async with (
        running_front(auth_mesh, replica="a") as a,
        running_front(auth_mesh, replica="b") as b,
        httpx.AsyncClient(timeout=30) as http,
    ):
        await until(lambda: _relaying(a, b), what="both replicas on NATS")
        opened = await http.post(a.url, json=request("initialize", hello), headers=headers)
        headers |= {"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": _session(opened)}
        async with http.stream("POST", a.url, json=call, headers=headers) as running:
            lines = running.aiter_lines()
            await anext(line async for line in lines if "notifications/progress" in line)
            cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
            told = await http.post(
                b.url, json={**cancel, "params": {"requestId": 7}}, headers=headers
            )
            rest = [line async for line in lines]

    assert told.status_code == 202
    assert a.workbench.cancelled == ["alpha__slow"]
    assert b.workbench.cancelled == []
    assert any("Request cancelled" in line for line in rest)


CLIENT = {"name": "cancel-test", "version": "0"}
PROGRESS = {"progressToken": "p1"}


def _relaying(*fronts: Front) -> bool:
    relays = [front.gateway.mcp.cancel_relay for front in fronts]
    return all(relay is not None and relay.connected for relay in relays)


def _session(response: httpx.Response) -> str:
    session = response.headers.get("mcp-session-id")
    assert session, response.text
    return str(session)


async def test_a_stopping_gateway_ends_its_notification_streams(auth_mesh: Mesh) -> None:
    headers = {**ACCEPT, **auth_mesh.bearer(auth_mesh.admin_token)}
    async with (
        running_front(auth_mesh) as running,
        connected(running.url, auth_mesh.admin_token, MODERN) as client,
        client.listen(tools_list_changed=True) as subscription,
        httpx.AsyncClient(timeout=30) as http,
        http.stream("GET", running.url, headers=headers) as legacy_stream,
    ):
        assert legacy_stream.status_code == 200
        await running.gateway.stop()
        # Both streams end by themselves; the test's timeout would catch a hang.
        events = [event async for event in subscription]
        rest = [chunk async for chunk in legacy_stream.aiter_bytes()]

    assert events == []
    assert b"list_changed" not in b"".join(rest)


@pytest.mark.parametrize("mode", ERAS)
async def test_the_limits_of_transcoded_calls_do_not_apply_to_mcp(
    auth_mesh: Mesh, mode: str
) -> None:
    tight = HttpSettings(body_limit_bytes=1024, default_timeout_seconds=0.05)
    big = "x" * 10_000
    async with (
        running_front(auth_mesh, http=tight) as running,
        connected(running.url, auth_mesh.admin_token, mode) as client,
    ):
        echoed = await client.call_tool("alpha__echo", {"text": big})
        napped = await client.call_tool("alpha__nap", {"seconds": 0.3})

    assert echoed.content == [types.TextContent(text=f"r1:{big}")]
    assert napped.content == [types.TextContent(text="nap")]
