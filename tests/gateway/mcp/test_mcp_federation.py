"""The MCP front over the upstream MCP servers: a real gateway in the auth mesh, our test
MCP server (:mod:`tests.gateway.mcp_upstreams.upstream`) as its upstream over stdio, the
SDK's client in both eras, and callers whose permissions differ."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import httpx
import pytest
import pytest_asyncio
from mcp import MCPError

from gateway.app import Gateway
from gateway.mcpfront import McpSettings
from gateway.mcpfront.federated import FederatedTools
from gateway.mcpfront.spec import (
    HttpTransport,
    StdioTransport,
    UpstreamSpec,
    inherited_environment,
)
from gateway.mcpfront.toolbox import Caller, CallerKind
from gateway.mcpfront.upstream_errors import (
    UnknownTool,
    UpstreamDied,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
)
from meshkit.config import ConfigError
from meshkit.permissions import Policy
from meshkit.tracing import TraceContext
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.gateway.auth.mesh import Mesh, person_jwt
from tests.gateway.conftest import FAST
from tests.gateway.mcp.clients import (
    ERAS,
    MODERN,
    MODERN_META,
    answer,
    connected,
    modern_headers,
    request,
)
from tests.gateway.mcp.conftest import ISSUER, mcp_config
from tests.gateway.mcp.federating import ready
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: The upstream's name: its tools are ``up__<tool>`` on /mcp.
UP = "up"
#: A configured server that is disabled: known, with an empty view.
OFF = "off"
#: Its tools, as our test server has them.
UP_TOOLS = ["add", "die", "echo", "env", "events", "fails", "grow", "header", "hold", "pid", "rich"]
UP_TOOLS += ["show_meta", "slow"]


def _permissions(*rules: tuple[str, str], admin: bool = False) -> users_pb2.Permissions:
    effects = {"allow": users_pb2.EFFECT_ALLOW, "deny": users_pb2.EFFECT_DENY}
    return users_pb2.Permissions(
        admin=admin,
        rules=[users_pb2.PermissionRule(effect=effects[e], pattern=p) for e, p in rules],
    )


class Federation:
    """A gateway federating our test server, and tokens of callers with different rules."""

    def __init__(self, gateway: Gateway, tokens: dict[str, str]) -> None:
        self.gateway = gateway
        self.tokens = tokens

    @property
    def url(self) -> str:
        return f"http://{self.gateway.http_address}/mcp"


@contextlib.asynccontextmanager
async def federating(mesh: Mesh) -> AsyncIterator[Gateway]:
    """A gateway in ``mesh`` whose MCP front serves our test server over stdio (calls time
    out after 2 s), once the server is READY and the mesh linked."""
    spec = UpstreamSpec(
        name=UP,
        transport=StdioTransport(
            command=sys.executable, args=("-m", SERVER, "stdio"), cwd=str(ROOT)
        ),
        call_timeout_seconds=2.0,
    )
    off = UpstreamSpec(name=OFF, transport=spec.transport, enabled=False)
    settings = McpSettings(
        page_size=100, servers=(spec, off), child_environment=inherited_environment(os.environ)
    )
    gateway = Gateway(mcp_config(mesh, settings), register=False, registry_backoff=FAST)
    await gateway.start()
    try:
        await ready(gateway)
        yield gateway
    finally:
        await gateway.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def federation(auth_mesh: Mesh) -> AsyncIterator[Federation]:
    """The gateway, and machine users: ``admin`` (the admin flag), ``echoer`` (only
    ``up/echo``), ``most`` (everything on ``up`` but ``echo``), ``nothing`` (no rule)."""
    rules = {
        "admin": _permissions(admin=True),
        "echoer": _permissions(("allow", "up/echo")),
        "most": _permissions(("allow", "up/*"), ("deny", "up/echo")),
        "nothing": _permissions(),
    }
    tokens = {}
    for who, permissions in rules.items():
        created = await auth_mesh.create_machine_user(f"fed-{who}", permissions=permissions)
        tokens[who] = created.token
    async with federating(auth_mesh) as gateway:
        yield Federation(gateway, tokens)


async def _names(url: str, token: str, mode: str) -> list[str]:
    async with connected(url, token, mode) as client:
        return sorted(tool.name for tool in (await client.list_tools()).tools)


@pytest.mark.parametrize("mode", ERAS)
async def test_an_admin_reaches_every_upstream_tool_by_exposed_and_by_own_name(
    federation: Federation, mode: str
) -> None:
    token = federation.tokens["admin"]

    names = await _names(federation.url, token, mode)
    # The plugins' tools (audit__*, users__*, ...) are listed too: see mcp_plugin_tools.
    assert [name for name in names if name.startswith("up__")] == [f"up__{t}" for t in UP_TOOLS]
    assert "users__check_permission" in names
    assert await _names(f"{federation.url}/s/{UP}", token, mode) == UP_TOOLS
    async with connected(federation.url, token, mode) as client:
        exposed = await client.call_tool("up__echo", {"text": "hi"})
        summed = await client.call_tool("up__add", {"a": 2, "b": 3})
    async with connected(f"{federation.url}/s/{UP}", token, mode) as client:
        own = await client.call_tool("echo", {"text": "there"})

    assert exposed.content[0].text == "echo:hi"  # type: ignore[union-attr]
    assert summed.structured_content == {"total": 5}
    assert own.content[0].text == "echo:there"  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", ERAS)
async def test_permissions_shape_each_callers_tools_list(federation: Federation, mode: str) -> None:
    tokens = federation.tokens

    assert await _names(federation.url, tokens["echoer"], mode) == ["up__echo"]
    most = await _names(federation.url, tokens["most"], mode)
    assert most == [f"up__{t}" for t in UP_TOOLS if t != "echo"]
    assert await _names(federation.url, tokens["nothing"], mode) == []
    assert await _names(f"{federation.url}/s/{UP}", tokens["echoer"], mode) == ["echo"]


@pytest.mark.parametrize("mode", ERAS)
async def test_a_forbidden_tool_is_answered_as_an_unknown_one(
    federation: Federation, mode: str
) -> None:
    async with connected(federation.url, federation.tokens["echoer"], mode) as client:
        allowed = await client.call_tool("up__echo", {"text": "ok"})
        with pytest.raises(MCPError) as forbidden:
            await client.call_tool("up__add", {"a": 1, "b": 2})
        with pytest.raises(MCPError) as unknown:
            await client.call_tool("up__nope", {"a": 1, "b": 2})

    assert allowed.content[0].text == "echo:ok"  # type: ignore[union-attr]
    assert forbidden.value.code == unknown.value.code == -32602
    assert str(forbidden.value) == "Unknown tool: up__add"
    assert str(unknown.value) == "Unknown tool: up__nope"
    assert forbidden.value.error.data == unknown.value.error.data


@pytest.mark.parametrize("path", ["", f"/s/{UP}"])
async def test_a_forbidden_call_and_an_unknown_one_differ_only_in_the_name(
    federation: Federation, path: str
) -> None:
    """Byte for byte on the wire (a raw 2026-07-28 request), so nothing leaks."""
    prefix = "up__" if not path else ""
    token = federation.tokens["most"]

    async def call(name: str) -> tuple[int, dict[str, Any]]:
        async with httpx.AsyncClient(timeout=20) as http:
            response = await http.post(
                federation.url + path,
                json=request(
                    "tools/call",
                    {"name": name, "arguments": {"text": "x"}, "_meta": MODERN_META},
                ),
                headers=modern_headers(token, "tools/call", name),
            )
        return response.status_code, answer(response)

    forbidden_status, forbidden = await call(f"{prefix}echo")
    unknown_status, unknown = await call(f"{prefix}zzzz")

    # The SDK checks a 2026-07-28 call's headers against the tool's schema first: a tool
    # without one (unknown, or forbidden) is a 400 with the JSON-RPC error.
    assert forbidden_status == unknown_status == 400
    assert forbidden["error"]["message"] == f"Unknown tool: {prefix}echo"
    assert forbidden == _renamed(unknown, f"{prefix}zzzz", f"{prefix}echo")


def _renamed(message: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    renamed: dict[str, Any] = json.loads(json.dumps(message).replace(old, new))
    return renamed


async def test_a_persons_permission_change_applies_to_the_next_request(
    federation: Federation, auth_mesh: Mesh
) -> None:
    admin = (("authorization", f"Bearer {auth_mesh.admin_token}"),)
    stub: Any = users_pb2_grpc.UserServiceStub(auth_mesh.channel)
    with contextlib.suppress(grpc.aio.AioRpcError):
        await stub.DeleteUser(users_pb2.DeleteUserRequest(user_id="fed-ada"), metadata=admin)
    await stub.CreateUser(
        users_pb2.CreateUserRequest(
            user=users_pb2.User(user_id="fed-ada", permissions=_permissions(("allow", "up/add")))
        ),
        metadata=admin,
    )
    token = person_jwt("fed-ada", iss=ISSUER)
    modern = MODERN

    assert await _names(federation.url, token, modern) == ["up__add"]

    await stub.UpdateUserPermissions(
        users_pb2.UpdateUserPermissionsRequest(
            user_id="fed-ada", permissions=_permissions(("allow", "up/e*"), ("deny", "up/env"))
        ),
        metadata=admin,
    )

    async def changed() -> list[str] | None:
        names = await _names(federation.url, token, modern)
        return names if names != ["up__add"] else None

    # The users plugin's event drops the gateway's cached record; the next list is new.
    assert await eventually(changed, timeout_seconds=20, what="the new permissions") == [
        "up__echo",
        "up__events",
    ]


@pytest.mark.parametrize("mode", ERAS)
async def test_an_upstream_timeout_is_a_json_rpc_error_naming_the_server(
    federation: Federation, mode: str
) -> None:
    async with connected(federation.url, federation.tokens["admin"], mode) as client:
        with pytest.raises(MCPError) as raised:
            await client.call_tool("up__slow", {"steps": 200, "step_seconds": 0.05})
        still = await client.call_tool("up__echo", {"text": "after"})

    assert raised.value.code == -32001  # REQUEST_TIMEOUT
    assert str(raised.value).startswith("up: slow did not finish within 2.0 s")
    assert raised.value.error.data == {"server": "up", "tool": "slow"}
    assert still.content[0].text == "echo:after"  # type: ignore[union-attr]


_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_TRACEPARENT = f"00-{_TRACE_ID}-00f067aa0ba902b7-01"


async def _meta_upstream(
    federation: Federation, headers: dict[str, str], meta: dict[str, Any]
) -> dict[str, Any]:
    """The ``_meta`` the upstream's ``show_meta`` got from a raw 2026-07-28 call."""
    token = federation.tokens["admin"]
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(
            federation.url,
            json=request(
                "tools/call",
                {"name": "up__show_meta", "arguments": {}, "_meta": {**MODERN_META, **meta}},
            ),
            headers={**modern_headers(token, "tools/call", "up__show_meta"), **headers},
        )
    assert response.status_code == 200, response.text
    result = answer(response)["result"]
    received: dict[str, Any] = json.loads(result["content"][0]["text"])
    return received


async def test_the_http_trace_context_reaches_the_upstream_in_meta(
    federation: Federation,
) -> None:
    headers = {"traceparent": _TRACEPARENT, "tracestate": "vendor=1"}

    received = await _meta_upstream(federation, headers, {})

    assert received["traceparent"] == _TRACEPARENT
    assert received["tracestate"] == "vendor=1"


async def test_the_upstream_is_asked_for_progress_only_when_the_caller_asked(
    federation: Federation,
) -> None:
    without = await _meta_upstream(federation, {}, {})
    asked = await _meta_upstream(federation, {}, {"progressToken": "p-1"})

    assert not {"progressToken", "progress_token"} & set(without)
    # The gateway's own token for its hop, not the caller's.
    assert {"progressToken", "progress_token"} & set(asked)
    assert "p-1" not in asked.values()


async def test_a_calls_own_meta_traceparent_is_the_one_passed_on(
    federation: Federation,
) -> None:
    own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    chosen = await _meta_upstream(federation, {"traceparent": _TRACEPARENT}, {"traceparent": own})
    malformed = await _meta_upstream(
        federation, {"traceparent": _TRACEPARENT}, {"traceparent": "nope", "tracestate": "x=1"}
    )
    started = await _meta_upstream(federation, {}, {})

    assert chosen["traceparent"] == own
    assert "tracestate" not in chosen
    assert malformed["traceparent"] == _TRACEPARENT
    assert "tracestate" not in malformed
    # No context at all: the gateway's new trace goes upstream.
    assert TraceContext.from_headers(started) is not None
    assert TraceContext.from_headers(started).trace_id != _TRACE_ID  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
async def test_the_view_of_an_unknown_server_is_a_404_with_a_json_rpc_error(
    federation: Federation, method: str
) -> None:
    token = federation.tokens["admin"]
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.request(
            method,
            f"{federation.url}/s/nope",
            json=request("tools/list") if method == "POST" else None,
            headers=modern_headers(token, "tools/list"),
        )

    assert response.status_code == 404
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "no MCP server is named 'nope'",
            "data": {"server": "nope"},
        },
    }


async def test_an_unknown_server_is_told_only_to_an_authenticated_caller(
    federation: Federation,
) -> None:
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(
            f"{federation.url}/s/nope",
            json=request("tools/list"),
            headers={**modern_headers("x", "tools/list"), "Authorization": ""},
        )

    assert response.status_code == 401


@pytest.mark.parametrize("mode", ERAS)
async def test_a_disabled_server_has_an_empty_view_not_a_404(
    federation: Federation, mode: str
) -> None:
    assert await _names(f"{federation.url}/s/{OFF}", federation.tokens["admin"], mode) == []


async def test_tool_changes_upstream_reach_the_list(federation: Federation) -> None:
    """``grow`` adds a tool upstream; the manager's listener tells the front, and the
    next list has it."""
    modern = MODERN
    token = federation.tokens["admin"]
    async with connected(federation.url, token, modern) as client:
        await client.call_tool("up__grow", {})

    async def grown() -> list[str] | None:
        names = await _names(federation.url, token, modern)
        return names if len(names) > len(UP_TOOLS) else None

    names = await eventually(grown, timeout_seconds=20, what="the grown tool listed")
    assert set(names) > {f"up__{t}" for t in UP_TOOLS}


# -- the servers file ------------------------------------------------------------------

GOOD_FILE = {
    "mcpServers": {
        "files": {
            "command": "npx",
            "args": ["-y", "some-server"],
            "env": {"TOKEN": "t"},
            "cwd": "/srv",
            "excludeTools": ["delete_*"],
        },
        "search": {
            "url": "https://search.example.com/mcp",
            "headers": {"Authorization": "Bearer x"},
            "enabled": False,
            "includeTools": ["query"],
            "callTimeoutSeconds": 30,
            "maxConcurrentCalls": 2,
        },
    }
}


async def test_a_good_servers_file_reads_into_specs(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(GOOD_FILE))

    settings = McpSettings.from_env({"PLUGMESH_GATEWAY_MCP_SERVERS_FILE": str(path)})

    assert settings.servers == (
        UpstreamSpec(
            name="files",
            transport=StdioTransport("npx", ("-y", "some-server"), {"TOKEN": "t"}, "/srv"),
            exclude_tools=("delete_*",),
        ),
        UpstreamSpec(
            name="search",
            transport=HttpTransport(
                "https://search.example.com/mcp", {"Authorization": "Bearer x"}
            ),
            enabled=False,
            include_tools=("query",),
            call_timeout_seconds=30.0,
            max_concurrent_calls=2,
        ),
    )
    assert McpSettings.from_env({}).servers == ()


def _one(server: dict[str, Any]) -> dict[str, Any]:
    return {"mcpServers": {"srv": server}}


@pytest.mark.parametrize(
    ("document", "named"),
    [
        pytest.param([], 'must be an object with an "mcpServers" object', id="not-an-object"),
        pytest.param({"servers": {}}, '"mcpServers"', id="no-mcpServers"),
        pytest.param(_one({"args": []}), "mcpServers.srv: needs command", id="no-transport"),
        pytest.param(
            _one({"command": "x", "url": "http://h/mcp"}), "mcpServers.srv: has both", id="both"
        ),
        pytest.param(_one({"command": ""}), "mcpServers.srv.command", id="empty-command"),
        pytest.param(_one({"command": "x", "args": "a b"}), "mcpServers.srv.args", id="args"),
        pytest.param(_one({"command": "x", "env": {"A": 1}}), "mcpServers.srv.env", id="env"),
        pytest.param(_one({"command": "x", "headers": {}}), "srv.headers: belongs", id="hdrs"),
        pytest.param(_one({"url": "ftp://h/x"}), "mcpServers.srv.url", id="url"),
        pytest.param(_one({"url": "http://h/mcp", "cwd": "/"}), "srv.cwd: belongs", id="cwd"),
        pytest.param(_one({"command": "x", "type": "stdio"}), "srv.type: is not a", id="typo"),
        pytest.param(
            _one({"command": "x", "enabled": "yes"}), "mcpServers.srv.enabled", id="enabled"
        ),
        pytest.param(
            _one({"command": "x", "callTimeoutSeconds": 0}),
            "mcpServers.srv.callTimeoutSeconds: must be positive",
            id="timeout",
        ),
        pytest.param(
            _one({"command": "x", "maxConcurrentCalls": 0}),
            "mcpServers.srv.maxConcurrentCalls: must be at least 1",
            id="slots",
        ),
        pytest.param(
            _one({"command": "x", "includeTools": [1]}),
            "mcpServers.srv.includeTools",
            id="include",
        ),
        pytest.param(
            {"mcpServers": {"Bad_Name": {"command": "x"}}},
            "mcpServers.Bad_Name: name 'Bad_Name' must be lower-case",
            id="name",
        ),
    ],
)
async def test_a_bad_servers_file_stops_the_start_naming_the_server_and_field(
    tmp_path: Path, document: Any, named: str
) -> None:
    path = tmp_path / "servers.json"
    path.write_text(json.dumps(document))

    with pytest.raises(ConfigError) as raised:
        McpSettings.from_env({"PLUGMESH_GATEWAY_MCP_SERVERS_FILE": str(path)})

    assert str(raised.value).startswith(f"PLUGMESH_GATEWAY_MCP_SERVERS_FILE: {path}: ")
    assert named in str(raised.value)


async def test_a_servers_file_that_is_missing_or_not_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{not json")

    with pytest.raises(ConfigError, match=r"missing\.json: cannot be read"):
        McpSettings.from_env({"PLUGMESH_GATEWAY_MCP_SERVERS_FILE": str(tmp_path / "missing.json")})
    with pytest.raises(ConfigError, match=r"bad\.json: not JSON"):
        McpSettings.from_env({"PLUGMESH_GATEWAY_MCP_SERVERS_FILE": str(tmp_path / "bad.json")})


# -- upstream failures, as the front answers them ----------------------------------------


class _Failing:
    """Stands in for the Upstreams manager (what is tested is the mapping): one listed
    tool ``s__t``, whose call raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def resolve(self, name: str) -> tuple[Any, str]:
        if name != "s__t":
            raise UnknownTool(tool=name)
        return SimpleNamespace(name="s"), "t"

    def find_tool(self, server: str | None, name: str) -> None:
        return None  # its definition is not what is tested

    async def call_tool(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise self.error


@pytest.mark.parametrize(
    ("error", "code", "message", "data"),
    [
        pytest.param(
            UpstreamRejected(server="s", tool="t", code=-32602, error_message="bad", data=[1]),
            -32602,
            "bad",
            [1],
            id="rejected",
        ),
        pytest.param(
            UpstreamNotReady(
                "s is failing: refused", server="s", tool="t", state="failing", last_error="x"
            ),
            -32603,
            "s is failing: refused",
            {"server": "s", "tool": "t"},
            id="not-ready",
        ),
        pytest.param(
            UpstreamDied("s: the connection ended during t", server="s", tool="t"),
            -32603,
            "s: the connection ended during t",
            {"server": "s", "tool": "t"},
            id="died",
        ),
        pytest.param(
            UpstreamProtocolError("s: t answered garbage", server="s", tool="t"),
            -32603,
            "s: t answered garbage",
            {"server": "s", "tool": "t"},
            id="protocol",
        ),
        pytest.param(
            UpstreamTimeout("s: t timed out", server="s", tool="t", timeout_seconds=1),
            -32001,
            "s: t timed out",
            {"server": "s", "tool": "t"},
            id="timeout",
        ),
    ],
)
async def test_each_upstream_failure_is_a_json_rpc_error(
    error: Exception, code: int, message: str, data: Any
) -> None:
    tools = FederatedTools(_Failing(error))  # type: ignore[arg-type]
    caller = Caller("m", CallerKind.MACHINE, permissions=Policy(admin=True))

    with pytest.raises(MCPError) as raised:
        await tools.call_tool(caller, None, "s__t", {}, meta={}, progress=_no_progress)

    assert (raised.value.code, raised.value.error.message, raised.value.error.data) == (
        code,
        message,
        data,
    )


async def test_an_unknown_tool_upstream_stays_unknown() -> None:
    tools = FederatedTools(_Failing(UnknownTool(tool="t")))  # type: ignore[arg-type]
    caller = Caller("m", CallerKind.MACHINE, permissions=Policy(admin=True))

    with pytest.raises(UnknownTool):
        await tools.call_tool(caller, None, "s__t", {}, meta={}, progress=_no_progress)
    with pytest.raises(UnknownTool):
        await tools.call_tool(caller, None, "s__x", {}, meta={}, progress=_no_progress)


async def _no_progress(done: float, total: float | None, message: str | None) -> None:
    return None
