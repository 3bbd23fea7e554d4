"""Upstreams that die or never work, end to end through a real gateway: servers added
with the admin API, called on ``/mcp`` by the SDK's client. A call in flight when its
server dies is a JSON-RPC error naming the server, at once; the server's tools leave
``tools/list`` (and listening clients are told) until it is back. A stdio command that
exits at once, or writes garbage to stdout, is FAILING with its last error in the
server's view, lists no tools, and the gateway serves the other servers on."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from mcp import MCPError
from mcp.shared.subscriptions import ToolsListChanged

from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp.servers_api import (
    FAILING,
    READY,
    add_server,
    our_upstream,
    reached,
    server_view,
    servers_admin,
)
from tests.gateway.mcp_upstreams.conftest import SERVER, HttpServer
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

#: Our test server, unless the file named by its first argument exists: then it exits at
#: once, as a server whose restart fails would.
MAYBE_UP = (
    "import os, sys\n"
    "if os.path.exists(sys.argv[1]):\n"
    "    sys.exit('down for the test')\n"
    "os.execv(sys.executable, [sys.executable, '-m', sys.argv[2], 'stdio'])\n"
)
#: A call that runs until its server dies.
LONG_CALL = {"steps": 2000, "step_seconds": 0.02}


class Gateway:
    """The mesh's gateway, an admin's token, and the healthy server ``up``."""

    def __init__(self, mesh: Mesh, token: str) -> None:
        self.mesh = mesh
        self.token = token
        self.url = f"http://{mesh.gateway.http_address}/mcp"

    async def tools(self, view: str = "") -> list[str]:
        """The names ``tools/list`` holds for the admin, on ``/mcp`` or a server's view."""
        async with connected(self.url + view, self.token, MODERN) as client:
            return sorted(tool.name for tool in (await client.list_tools()).tools)

    async def serves_up(self) -> bool:
        """Whether the healthy server's tools are listed and called."""
        async with connected(self.url, self.token, MODERN) as client:
            result = await client.call_tool("up__echo", {"text": "still here"})
        return result.content[0].text == "echo:still here"  # type: ignore[union-attr]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    token = await servers_admin(auth_mesh, "broken-admin")
    await add_server(auth_mesh, token, our_upstream("up"))
    await reached(auth_mesh, token, "up", READY)
    yield Gateway(auth_mesh, token)


async def failing_with(gateway: Gateway, name: str, text: str) -> dict[str, Any]:
    """The server's view once it is FAILING with ``text`` in its last error."""

    async def check() -> dict[str, Any] | None:
        view = await server_view(gateway.mesh, gateway.token, name)
        status = view.get("status", {})
        return view if status.get("state") == FAILING and text in status["lastError"] else None

    return await eventually(
        check, timeout_seconds=60, interval_seconds=0.1, what=f"{name} failing with {text!r}"
    )


def assert_died(error: MCPError, server: str, tool: str) -> None:
    assert error.code == -32603
    assert str(error).startswith(f"{server}: the connection ended during {tool}")
    assert error.error.data == {"server": server, "tool": tool}


async def test_a_stdio_server_killed_mid_call_fails_its_calls_and_leaves_the_list_until_back(
    gateway: Gateway, tmp_path: Path
) -> None:
    down = tmp_path / "down"
    body = our_upstream("mortal", "-c", MAYBE_UP, str(down), SERVER, callTimeout="60s")
    await add_server(gateway.mesh, gateway.token, body)
    await reached(gateway.mesh, gateway.token, "mortal", READY)
    assert "mortal__echo" in await gateway.tools()

    async with (
        connected(gateway.url, gateway.token, MODERN) as client,
        client.listen(tools_list_changed=True) as changes,
    ):
        running = asyncio.Event()

        async def progress(progress: float, total: float | None, message: str | None) -> None:
            running.set()

        in_flight = asyncio.create_task(
            client.call_tool("mortal__slow", LONG_CALL, progress_callback=progress)
        )
        await asyncio.wait_for(running.wait(), 20)
        down.touch()  # the gateway's restarts fail until the file goes
        # Both well within the server's 60 s call timeout.
        with pytest.raises(MCPError) as died:
            await asyncio.wait_for(client.call_tool("mortal__die", {}), 15)
        with pytest.raises(MCPError) as cut:
            await asyncio.wait_for(in_flight, 15)
        told = await asyncio.wait_for(anext(aiter(changes)), 15)

    assert_died(died.value, "mortal", "die")
    assert_died(cut.value, "mortal", "slow")
    assert isinstance(told, ToolsListChanged)
    view = await failing_with(gateway, "mortal", "down for the test")
    assert view["status"]["lastError"]
    assert not [name for name in await gateway.tools() if name.startswith("mortal__")]
    assert await gateway.tools("/s/mortal") == []
    async with connected(gateway.url, gateway.token, MODERN) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("mortal__echo", {"text": "x"})
    assert refused.value.code == -32603
    # Between two attempts, or in one: either way not READY, and why.
    assert re.match(r"mortal is (failing|connecting): .*down for the test", str(refused.value))
    assert await gateway.serves_up()

    down.unlink()  # the next restart (within the backoff's 5 s) works
    await reached(gateway.mesh, gateway.token, "mortal", READY)
    assert "mortal__echo" in await gateway.tools()
    async with connected(gateway.url, gateway.token, MODERN) as client:
        back = await client.call_tool("mortal__echo", {"text": "back"})
    assert back.content[0].text == "echo:back"  # type: ignore[union-attr]


async def test_an_http_server_killed_mid_call_fails_its_calls_and_is_listed_again_once_back(
    gateway: Gateway,
) -> None:
    server = HttpServer()
    await server.start()
    try:
        await add_server(
            gateway.mesh, gateway.token, {"name": "web", "streamableHttp": {"url": server.url}}
        )
        await reached(gateway.mesh, gateway.token, "web", READY)

        async with connected(gateway.url, gateway.token, MODERN) as client:
            with pytest.raises(MCPError) as died:
                await asyncio.wait_for(client.call_tool("web__die", {}), 15)
        await server.exited()

        assert died.value.code == -32603
        assert str(died.value).startswith("web: ")
        assert died.value.error.data == {"server": "web", "tool": "die"}
        view = await reached(gateway.mesh, gateway.token, "web", FAILING)
        assert view["status"]["lastError"]
        assert not [name for name in await gateway.tools() if name.startswith("web__")]
        assert await gateway.serves_up()

        await server.start()  # on the port it had
        await reached(gateway.mesh, gateway.token, "web", READY)
        assert "web__echo" in await gateway.tools()
    finally:
        await server.stop()


# (server, its command's Python code, what its last error says)
NEVER_WORK = [
    pytest.param(
        "quitter",
        "import sys; print('missing setting FOO', file=sys.stderr); sys.exit(3)",
        "missing setting FOO",
        id="exits-at-once",
    ),
    pytest.param(
        "babbler",
        "import time\nprint('hello, I am not an MCP server', flush=True)\ntime.sleep(300)\n",
        "hello, I am not an MCP server",
        id="garbage-on-stdout",
    ),
]


@pytest.mark.parametrize(("name", "code", "said"), NEVER_WORK)
async def test_a_stdio_command_that_never_serves_is_failing_and_the_gateway_serves_on(
    gateway: Gateway, name: str, code: str, said: str
) -> None:
    body = {"name": name, "stdio": {"command": sys.executable, "args": ["-c", code]}}
    await add_server(gateway.mesh, gateway.token, body)

    view = await failing_with(gateway, name, said)

    assert view["status"].get("toolCount", 0) == 0
    assert not [tool for tool in await gateway.tools() if tool.startswith(f"{name}__")]
    assert await gateway.tools(f"/s/{name}") == []
    assert await gateway.serves_up()
