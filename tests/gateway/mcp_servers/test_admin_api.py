"""The admin API of the upstream MCP servers, through a real gateway in the auth mesh:
``/v1/mcp/servers`` over HTTP, our test MCP server (:mod:`tests.gateway.mcp_upstreams.upstream`)
as upstream over Streamable HTTP and over stdio, the SDK's client on ``/mcp``, the events
in the audit log, and a second gateway replica that follows the changes."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from mcp.shared.subscriptions import ToolsListChanged

from gateway.app import Gateway
from gateway.mcpfront.upstream import State
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.conftest import FAST
from tests.gateway.mcp.clients import MODERN, connected, every_page
from tests.gateway.mcp.conftest import mcp_config
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER, HttpServer
from tests.support.waiting import eventually, until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

SERVERS = "/v1/mcp/servers"
HEADER_SECRET = "hdr-secret-5f1e2d"
ENV_SECRET = "env-secret-9a8b7c"
#: Our test server's tools.
TOOLS = ["add", "die", "echo", "env", "events", "fails", "grow", "header", "hold", "pid", "rich"]
TOOLS += ["show_meta", "slow"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(auth_mesh: Mesh) -> Mesh:
    """The auth mesh once the gateway routes ``McpServerService``; its admin token's
    permissions carry the admin flag, so it may call every MCP tool."""
    created = await auth_mesh.create_machine_user(
        "servers-admin", admin=True, permissions=users_pb2.Permissions(admin=True)
    )
    auth_mesh.admin_token = created.token

    async def routed() -> bool | None:
        service = auth_mesh.gateway.catalog.service("mcp-servers")
        return True if service and service.serving and service.schema else None

    await eventually(routed, timeout_seconds=20, what="mcp-servers routed")
    return auth_mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[HttpServer]:
    """Our test MCP server over Streamable HTTP."""
    server = HttpServer()
    await server.start()
    yield server
    await server.stop()


def admin(mesh: Mesh) -> dict[str, str]:
    return mesh.bearer(mesh.admin_token)


async def create(mesh: Mesh, body: dict[str, Any]) -> httpx.Response:
    return await mesh.http.post(SERVERS, json=body, headers=admin(mesh))


async def get(mesh: Mesh, name: str) -> dict[str, Any]:
    response = await mesh.http.get(f"{SERVERS}/{name}", headers=admin(mesh))
    assert response.status_code == 200, response.text
    return response.json()["server"]  # type: ignore[no-any-return]


async def state_of(mesh: Mesh, name: str, state: str) -> dict[str, Any]:
    """The server's view once its status says ``state``."""

    async def reached() -> dict[str, Any] | None:
        server = await get(mesh, name)
        return server if server.get("status", {}).get("state") == state else None

    return await eventually(reached, timeout_seconds=30, what=f"{name} {state}")


async def mcp_tools(mesh: Mesh) -> list[str]:
    url = f"http://{mesh.gateway.http_address}/mcp"
    async with connected(url, mesh.admin_token, MODERN) as client:
        return sorted(tool.name for tool in (await client.list_tools()).tools)


async def test_a_server_added_over_http_serves_its_tools_on_mcp_without_a_restart(
    mesh: Mesh, upstream: HttpServer
) -> None:
    created = await create(
        mesh,
        {
            "name": "web",
            "description": "our test server",
            "streamableHttp": {"url": upstream.url, "headers": {"X-Upstream-Key": HEADER_SECRET}},
        },
    )

    assert created.status_code == 200, created.text
    assert HEADER_SECRET not in created.text
    server = created.json()["server"]
    http = server["streamableHttp"]
    assert (http["url"], http["headerNames"]) == (upstream.url, ["X-Upstream-Key"])
    assert not http.get("headers")  # write-only
    assert server["enabled"] is True
    assert server["callTimeout"] == "60s"
    assert server["maxConcurrentCalls"] == 16
    ready = await state_of(mesh, "web", "SERVER_STATE_READY")
    assert ready["status"]["toolCount"] == len(TOOLS)
    assert "toolsFetchTime" in ready["status"]
    assert [f"web__{tool}" for tool in TOOLS] == [t for t in await mcp_tools(mesh) if "web__" in t]
    url = f"http://{mesh.gateway.http_address}/mcp"
    async with connected(url, mesh.admin_token, MODERN) as client:
        sent = await client.call_tool("web__header", {"name": "x-upstream-key"})
    assert sent.content[0].text == HEADER_SECRET  # type: ignore[union-attr]


async def test_the_tools_view_and_a_refresh_show_what_the_gateway_serves(mesh: Mesh) -> None:
    await state_of(mesh, "web", "SERVER_STATE_READY")
    tools = await mesh.http.get(f"{SERVERS}/web/tools", headers=admin(mesh))
    refreshed = await mesh.http.post(f"{SERVERS}/web:refresh", json={}, headers=admin(mesh))

    assert tools.status_code == 200, tools.text
    listed = tools.json()["tools"]
    assert [tool["name"] for tool in listed] == TOOLS
    echo = next(tool for tool in listed if tool["name"] == "echo")
    assert echo["exposedName"] == "web__echo"
    assert echo["inputSchema"]["properties"]["text"]["type"] == "string"
    assert tools.json()["status"]["state"] == "SERVER_STATE_READY"
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.json()["status"]["state"] == "SERVER_STATE_READY"
    assert refreshed.json()["status"]["toolCount"] == len(TOOLS)


async def test_disabling_takes_the_tools_off_mcp_and_enabling_brings_them_back(
    mesh: Mesh,
) -> None:
    await state_of(mesh, "web", "SERVER_STATE_READY")

    off = await mesh.http.patch(f"{SERVERS}/web", json={"enabled": False}, headers=admin(mesh))
    assert off.status_code == 200, off.text
    assert off.json()["server"]["enabled"] is False
    disabled = await state_of(mesh, "web", "SERVER_STATE_DISABLED")
    assert not disabled["status"].get("toolCount")
    assert not [name for name in await mcp_tools(mesh) if name.startswith("web__")]
    unserved = await mesh.http.get(f"{SERVERS}/web/tools", headers=admin(mesh))
    assert not unserved.json().get("tools")

    on = await mesh.http.patch(f"{SERVERS}/web", json={"enabled": True}, headers=admin(mesh))
    assert on.status_code == 200, on.text
    await state_of(mesh, "web", "SERVER_STATE_READY")
    assert "web__echo" in await mcp_tools(mesh)


async def test_an_update_mask_changes_only_the_fields_it_names(mesh: Mesh) -> None:
    before = await get(mesh, "web")

    changed = await mesh.http.patch(
        f"{SERVERS}/web",
        params={"updateMask": "description,excludeTools"},
        json={"description": "now without die", "excludeTools": ["die"], "maxConcurrentCalls": 3},
        headers=admin(mesh),
    )

    assert changed.status_code == 200, changed.text
    server = changed.json()["server"]
    assert server["description"] == "now without die"
    assert server["excludeTools"] == ["die"]
    assert server["maxConcurrentCalls"] == before["maxConcurrentCalls"]
    assert server["streamableHttp"]["headerNames"] == ["X-Upstream-Key"]
    assert server["createTime"] == before["createTime"]
    assert server["updateTime"] > before["updateTime"]
    assert "web__die" not in await mcp_tools(mesh)


async def test_a_stdio_server_gets_its_env_and_no_answer_shows_it(mesh: Mesh) -> None:
    created = await create(
        mesh,
        {
            "name": "child",
            "stdio": {
                "command": sys.executable,
                "args": ["-m", SERVER, "stdio"],
                "cwd": str(ROOT),
                "env": {"PLUGMESH_TEST_SECRET": ENV_SECRET},
            },
        },
    )
    assert created.status_code == 200, created.text
    await state_of(mesh, "child", "SERVER_STATE_READY")
    url = f"http://{mesh.gateway.http_address}/mcp"
    async with connected(url, mesh.admin_token, MODERN) as client:
        env = await client.call_tool("child__env", {"name": "PLUGMESH_TEST_SECRET"})
    listed = await mesh.http.get(SERVERS, headers=admin(mesh))

    assert env.content[0].text == ENV_SECRET  # type: ignore[union-attr]
    stdio = next(s for s in listed.json()["servers"] if s["name"] == "child")["stdio"]
    assert stdio["envNames"] == ["PLUGMESH_TEST_SECRET"]
    assert not stdio.get("env")  # write-only
    for text in (created.text, listed.text):
        assert ENV_SECRET not in text
        assert HEADER_SECRET not in text


async def test_servers_are_listed_by_name_a_page_at_a_time(mesh: Mesh) -> None:
    first = await mesh.http.get(SERVERS, params={"pageSize": 1}, headers=admin(mesh))
    token = first.json()["nextPageToken"]
    second = await mesh.http.get(
        SERVERS, params={"pageSize": 1, "pageToken": token}, headers=admin(mesh)
    )

    assert [s["name"] for s in first.json()["servers"]] == ["child"]
    assert [s["name"] for s in second.json()["servers"]] == ["web"]
    assert not second.json().get("nextPageToken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad_Name", "stdio": {"command": "x"}}, "server.name"),
        ({"name": "", "stdio": {"command": "x"}}, "server.name"),
        ({"name": "a" * 32, "stdio": {"command": "x"}}, "server.name"),
        ({"name": "no-transport"}, "server.stdio"),
        ({"name": "no-command", "stdio": {"command": ""}}, "server.stdio.command"),
        (
            {"name": "ftp", "streamableHttp": {"url": "ftp://example.com/"}},
            "server.streamable_http.url",
        ),
        (
            {
                "name": "host",
                "streamableHttp": {"url": "http://127.0.0.1:1/", "headers": {"Host": "x"}},
            },
            "server.streamable_http.headers",
        ),
        (
            {
                "name": "crlf",
                "streamableHttp": {"url": "http://127.0.0.1:1/", "headers": {"A": "b\r\nc: d"}},
            },
            "server.streamable_http.headers[A]",
        ),
        (
            {"name": "busy", "stdio": {"command": "x"}, "maxConcurrentCalls": 5000},
            "server.max_concurrent_calls",
        ),
        ({"name": "never", "stdio": {"command": "x"}, "callTimeout": "0s"}, "server.call_timeout"),
        (
            {"name": "glob", "stdio": {"command": "x"}, "includeTools": [""]},
            "server.include_tools[0]",
        ),
    ],
)
async def test_a_bad_server_is_refused_naming_the_field(
    mesh: Mesh, body: dict[str, Any], field: str
) -> None:
    refused = await create(mesh, body)

    assert refused.status_code == 400, refused.text
    fields = [detail["metadata"]["field"] for detail in refused.json()["details"]]
    assert fields == [field]


async def test_a_taken_name_conflicts_and_an_unknown_one_is_not_found(mesh: Mesh) -> None:
    taken = await create(mesh, {"name": "web", "stdio": {"command": "x"}})
    headers = admin(mesh)
    missing = [
        await mesh.http.get(f"{SERVERS}/nope", headers=headers),
        await mesh.http.patch(f"{SERVERS}/nope", json={"enabled": False}, headers=headers),
        await mesh.http.delete(f"{SERVERS}/nope", headers=headers),
        await mesh.http.get(f"{SERVERS}/nope/tools", headers=headers),
        await mesh.http.post(f"{SERVERS}/nope:refresh", json={}, headers=headers),
    ]

    assert taken.status_code == 409, taken.text
    assert [response.status_code for response in missing] == [404] * 5


async def test_only_admins_may_manage_servers(mesh: Mesh) -> None:
    plain = mesh.bearer(mesh.user_token)

    anonymous = await mesh.http.get(SERVERS)
    listed = await mesh.http.get(SERVERS, headers=plain)
    created = await mesh.http.post(
        SERVERS, json={"name": "sneaky", "stdio": {"command": "x"}}, headers=plain
    )

    assert anonymous.status_code == 401
    assert (listed.status_code, created.status_code) == (403, 403)


@contextlib.asynccontextmanager
async def second_replica(mesh: Mesh) -> AsyncIterator[Gateway]:
    """Another gateway sharing the mesh's database and NATS."""
    replica = Gateway(mcp_config(mesh), register=False, registry_backoff=FAST)
    await replica.start()
    try:

        def routed() -> bool:
            service = replica.catalog.service("machine-users")
            return service is not None and service.serving

        await until(routed, timeout_seconds=20, what="the replica routes machine-users")
        yield replica
    finally:
        await replica.stop()


async def test_another_replica_applies_every_change_on_its_event(
    mesh: Mesh, upstream: HttpServer
) -> None:
    async with second_replica(mesh) as replica:

        def replica_state(name: str) -> State | None:
            running = replica.mcp_upstreams.get(name)
            return running.state if running is not None else None

        # What the database held when it started: every server so far.
        await until(
            lambda: replica_state("web") is State.READY, timeout_seconds=30, what="web READY"
        )
        await until(lambda: replica.mcp_upstreams.get("follow") is None, what="no follow")

        created = await create(mesh, {"name": "follow", "streamableHttp": {"url": upstream.url}})
        assert created.status_code == 200, created.text
        # Well within the replica's periodic reload (60 s): the event did it.
        await until(
            lambda: replica_state("follow") is State.READY, timeout_seconds=20, what="follow READY"
        )
        patched = await mesh.http.patch(
            f"{SERVERS}/follow", json={"enabled": False}, headers=admin(mesh)
        )
        assert patched.status_code == 200, patched.text
        await until(
            lambda: replica_state("follow") is State.DISABLED, timeout_seconds=20, what="disabled"
        )
        deleted = await mesh.http.delete(f"{SERVERS}/follow", headers=admin(mesh))
        assert deleted.status_code == 200, deleted.text
        await until(lambda: replica_state("follow") is None, timeout_seconds=20, what="follow gone")


async def test_a_client_of_another_replica_hears_that_a_new_server_changed_its_tools(
    mesh: Mesh, upstream: HttpServer
) -> None:
    async with second_replica(mesh) as replica:
        url = f"http://{replica.http_address}/mcp"
        async with (
            connected(url, mesh.admin_token, MODERN) as client,
            client.listen(tools_list_changed=True) as subscription,
        ):
            created = await create(mesh, {"name": "late", "streamableHttp": {"url": upstream.url}})
            assert created.status_code == 200, created.text
            event = await asyncio.wait_for(anext(aiter(subscription)), 30)

            async def listed() -> bool:
                # Every page: the plugins' tools are listed too.
                return any("late__echo" in page for page in await every_page(client))

            await until(listed, timeout_seconds=30, what="late__echo listed on the replica")
        deleted = await mesh.http.delete(f"{SERVERS}/late", headers=admin(mesh))

    assert isinstance(event, ToolsListChanged)
    assert deleted.status_code == 200, deleted.text


async def test_every_change_is_an_event_in_the_audit_log(mesh: Mesh) -> None:
    async def recorded() -> list[str] | None:
        response = await mesh.http.get(
            "/v1/audit/entries", params={"resource": "mcp/servers/follow"}, headers=admin(mesh)
        )
        actions = sorted(entry["action"] for entry in response.json().get("entries", []))
        return actions if len(actions) >= 3 else None

    actions = await eventually(recorded, timeout_seconds=30, what="three audit entries")
    assert actions == ["mcp.server.created", "mcp.server.deleted", "mcp.server.updated"]


async def test_no_secret_is_stored_or_logged_in_plain_text(mesh: Mesh) -> None:
    found = []
    for path in sorted(mesh.data_dir.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            found += [
                f"{path.name}: {s}" for s in (HEADER_SECRET, ENV_SECRET) if s.encode() in data
            ]

    assert (mesh.data_dir / "gateway.db").is_file()
    assert found == []
