"""The MCP endpoint serves a toolbox's tools to the SDK's clients of both eras: pages,
views, calls with progress and cancellation, results whole, list changes, and a
2025-06-18 client over raw HTTP."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import anyio
import httpx
import mcp.types as types
import pytest
from mcp import MCPError
from mcp.client.session import IncomingMessage
from mcp.shared.subscriptions import ToolsListChanged
from mcp.types import RequestParamsMeta

from gateway.mcpfront import CallerKind
from tests.gateway.auth.mesh import Mesh, person_jwt
from tests.gateway.mcp.clients import (
    ACCEPT,
    ERAS,
    LEGACY,
    MODERN,
    MODERN_META,
    answer,
    connected,
    every_page,
    modern_headers,
    request,
)
from tests.gateway.mcp.conftest import ISSUER, PAGE_SIZE, Front
from tests.gateway.mcp.workbench import RICH
from tests.support.waiting import eventually, until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


def exposed(front: Front, server: str | None = None) -> list[str]:
    return sorted(front.workbench.tools(server))


@pytest.mark.parametrize("mode", ERAS)
async def test_tools_list_pages_through_every_tool_in_name_order(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        pages = await every_page(client)

    assert len(pages) > 1
    assert all(0 < len(page) <= PAGE_SIZE for page in pages)
    assert [name for page in pages for name in page] == exposed(front)


@pytest.mark.parametrize("mode", ERAS)
async def test_a_server_view_serves_its_tools_under_their_own_names(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    async with connected(front.url + "/s/beta", auth_mesh.admin_token, mode) as client:
        pages = await every_page(client)
        echoed = await client.call_tool("echo", {"text": "hi"})
        with pytest.raises(MCPError) as other_server:
            await client.call_tool("alpha__echo", {"text": "hi"})

    assert pages == [["echo", "whoami"]]
    assert echoed.content == [types.TextContent(text="r1:hi")]
    assert front.workbench.calls[-1].server == "beta"
    assert other_server.value.error.code == types.INVALID_PARAMS


@pytest.mark.parametrize("mode", ERAS)
async def test_a_bad_cursor_is_invalid_params(auth_mesh: Mesh, front: Front, mode: str) -> None:
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        first = await client.list_tools()
        assert first.next_cursor is not None
        with pytest.raises(MCPError) as garbage:
            await client.list_tools(cursor="not-a-cursor")
    async with connected(front.url + "/s/alpha", auth_mesh.admin_token, mode) as client:
        with pytest.raises(MCPError) as other_view:
            await client.list_tools(cursor=first.next_cursor)

    assert garbage.value.error.code == types.INVALID_PARAMS
    assert other_view.value.error.code == types.INVALID_PARAMS
    assert "another view" in other_view.value.error.message


@pytest.mark.parametrize("mode", ERAS)
async def test_a_call_reports_progress_and_returns_its_result(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        result = await client.call_tool("alpha__slow", {"steps": 3}, progress_callback=on_progress)

    assert result.content == [types.TextContent(text="done 3")]
    assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_cancelled_call_cancels_the_toolbox_call(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    front.workbench.cancelled.clear()
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        with anyio.CancelScope() as scope:

            async def cancel(progress: float, total: float | None, message: str | None) -> None:
                scope.cancel()  # the call is running: it reported progress

            await client.call_tool(
                "alpha__slow", {"steps": 1, "hold": True}, progress_callback=cancel
            )
        # The client stays connected: the cancellation, not a closed connection, stops it.
        await until(lambda: front.workbench.cancelled == ["alpha__slow"], what="the cancel")
        after = await client.call_tool("alpha__echo", {"text": "after"})

    assert scope.cancelled_caught
    assert after.content == [types.TextContent(text="r1:after")]


@pytest.mark.parametrize("mode", ERAS)
async def test_an_unknown_tool_is_invalid_params_naming_it(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("alpha__nope", {})

    assert unknown.value.error.code == types.INVALID_PARAMS
    assert unknown.value.error.message == "Unknown tool: alpha__nope"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_result_passes_through_whole(auth_mesh: Mesh, front: Front, mode: str) -> None:
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        result = await client.call_tool("alpha__rich", {})

    wire = result.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert wire["isError"] is True
    assert wire["content"] == RICH["content"]
    assert wire["structuredContent"] == RICH["structuredContent"]
    # The upstream's own serverInfo stamp is not passed on; the gateway's may be there.
    assert wire["_meta"]["dev.plugmesh/decision"] == "allow"
    assert wire["_meta"].get("io.modelcontextprotocol/serverInfo", {}).get("x") is None


@pytest.mark.parametrize("mode", ERAS)
async def test_the_request_meta_reaches_the_toolbox_without_the_protocols_keys(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    trace = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        await client.call_tool(
            "alpha__slow",
            {"steps": 1},
            progress_callback=_ignore,
            meta=cast(RequestParamsMeta, {"traceparent": trace}),
        )

    assert front.workbench.calls[-1].meta == {"traceparent": trace}


@pytest.mark.parametrize(
    ("who", "kind", "admin"),
    [
        pytest.param("admin_token", CallerKind.MACHINE, True, id="admin-machine-token"),
        pytest.param("user_token", CallerKind.MACHINE, False, id="machine-token"),
        pytest.param("jwt", CallerKind.PERSON, False, id="person-jwt"),
    ],
)
async def test_the_verified_caller_reaches_the_toolbox(
    auth_mesh: Mesh, front: Front, who: str, kind: CallerKind, admin: bool
) -> None:
    token = person_jwt("ada", iss=ISSUER) if who == "jwt" else getattr(auth_mesh, who)
    auth_mesh.bearer(token)  # remembered for the leak scan
    async with connected(front.url, token, MODERN) as client:
        result = await client.call_tool("beta__whoami", {})

    caller = front.workbench.calls[-1].caller
    assert (caller.kind, caller.admin) == (kind, admin)
    assert result.structured_content == {"id": caller.id, "kind": kind.value, "admin": admin}
    if who == "user_token":
        assert caller.id == auth_mesh.user_machine_id
    if who == "jwt":
        assert caller.id == "ada"


async def test_a_persons_first_mcp_request_provisions_them(auth_mesh: Mesh, front: Front) -> None:
    token = person_jwt("hopper", email="grace@hopper.example", iss=ISSUER)
    auth_mesh.bearer(token)
    async with connected(front.url, token, MODERN) as client:
        await client.list_tools()
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    async def provisioned() -> dict[str, Any] | None:
        found = await auth_mesh.http.get("/v1/users/hopper", headers=admin)
        return found.json()["user"] if found.status_code == 200 else None

    user = await eventually(provisioned, timeout_seconds=30, what="auth.login to provision")
    assert user["email"] == "grace@hopper.example"


@pytest.mark.parametrize("mode", ["auto", LEGACY])
async def test_the_server_says_it_sends_tool_list_changes(
    auth_mesh: Mesh, front: Front, mode: str
) -> None:
    async with connected(front.url, auth_mesh.admin_token, mode) as client:
        tools = client.server_capabilities.tools
        version = client.protocol_version

    assert tools is not None
    assert tools.list_changed is True
    assert version == (MODERN if mode == "auto" else "2025-11-25")


async def test_a_modern_listener_hears_that_the_tool_list_changed(
    auth_mesh: Mesh, front: Front
) -> None:
    async with (
        connected(front.url, auth_mesh.admin_token, MODERN) as client,
        client.listen(tools_list_changed=True) as subscription,
    ):
        await front.gateway.mcp.tools_changed()
        event = await asyncio.wait_for(anext(aiter(subscription)), 10)

    assert isinstance(event, ToolsListChanged)


async def test_a_legacy_client_hears_that_the_tool_list_changed(
    auth_mesh: Mesh, front: Front
) -> None:
    heard: list[str] = []

    async def on_message(message: IncomingMessage) -> None:
        method = getattr(message, "method", None)
        if isinstance(method, str):
            heard.append(method)

    async with connected(
        front.url, auth_mesh.admin_token, LEGACY, message_handler=on_message
    ) as client:
        await client.list_tools()

        async def announced() -> bool:
            await front.gateway.mcp.tools_changed()
            return "notifications/tools/list_changed" in heard

        # Published until heard: the client opens its GET stream in the background.
        await until(announced, what="list_changed on the GET stream")


async def test_a_2025_06_18_client_is_served_over_raw_http(auth_mesh: Mesh, front: Front) -> None:
    headers = {**ACCEPT, **auth_mesh.bearer(auth_mesh.admin_token)}
    initialize = request(
        "initialize",
        {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "raw-2025-06-18", "version": "0"},
        },
    )
    async with httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(front.url, json=initialize, headers=headers)
        session = opened.headers.get("mcp-session-id")
        assert session
        headers |= {"MCP-Protocol-Version": "2025-06-18", "Mcp-Session-Id": session}
        initialized = await http.post(
            front.url,
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=headers,
        )
        names: list[str] = []
        cursor: str | None = None
        for page in range(1, 10):
            params = {"cursor": cursor} if cursor else {}
            listed = answer(
                await http.post(
                    front.url, json=request("tools/list", params, page), headers=headers
                )
            )
            names += [tool["name"] for tool in listed["result"]["tools"]]
            cursor = listed["result"].get("nextCursor")
            if cursor is None:
                break
        called = answer(
            await http.post(
                front.url,
                json=request(
                    "tools/call", {"name": "alpha__add", "arguments": {"a": 1, "b": 2}}, 20
                ),
                headers=headers,
            )
        )

    result = answer(opened)["result"]
    assert result["protocolVersion"] == "2025-06-18"
    assert result["capabilities"]["tools"] == {"listChanged": True}
    assert initialized.status_code == 202
    assert names == exposed(front)
    assert called["result"]["structuredContent"] == {"sum": 3.0}
    assert "resultType" not in called["result"]


async def test_a_modern_call_does_not_make_the_server_list_its_tools(
    auth_mesh: Mesh, front: Front
) -> None:
    # Without the toolbox's schema look-up, the SDK would run tools/list to check the
    # call's Mcp-Param headers: every permission check and audit event twice.
    headers = modern_headers(auth_mesh.admin_token, "tools/call", "alpha__add")
    call = request(
        "tools/call", {"name": "alpha__add", "arguments": {"a": 1, "b": 2}, "_meta": MODERN_META}
    )
    listed = len(front.workbench.listings)
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(front.url, json=call, headers=headers)

    assert answer(response)["result"]["structuredContent"] == {"sum": 3.0}
    assert len(front.workbench.listings) == listed


async def _ignore(progress: float, total: float | None, message: str | None) -> None:
    return None
