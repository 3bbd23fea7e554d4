"""Every tool call through the MCP front is one ``tool.call.started`` and then one
``tool.call.completed`` or ``tool.call.failed``, read back from the audit log: a real
gateway in the auth mesh federating our test MCP server over stdio, callers with
different permissions, the SDK's client in both eras."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import pytest_asyncio
from mcp import MCPError
from sqlalchemy import select

from gateway.app import Gateway
from gateway.mcpfront import McpSettings
from gateway.mcpfront.call_events import (
    REDACTED,
    CallArguments,
    OutboxCallLog,
    recorded_arguments,
)
from gateway.mcpfront.call_log import CallNotRecorded, Outcome, ToolCall
from gateway.mcpfront.federated import FederatedTools
from gateway.mcpfront.toolbox import Caller, CallerKind
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.events.tables import MIGRATIONS as EVENT_TABLES
from meshkit.events.tables import OutboxRecord
from meshkit.permissions import Policy
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import (
    ERAS,
    LEGACY,
    MODERN,
    MODERN_META,
    answer,
    connected,
    modern_headers,
    request,
)
from tests.gateway.mcp.federating import UP, federating, ready
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
_EFFECTS = {"allow": users_pb2.EFFECT_ALLOW, "deny": users_pb2.EFFECT_DENY}


def _permissions(*rules: tuple[str, str], admin: bool = False) -> users_pb2.Permissions:
    return users_pb2.Permissions(
        admin=admin,
        rules=[users_pb2.PermissionRule(effect=_EFFECTS[e], pattern=p) for e, p in rules],
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    """The gateway with the default setting (argument keys only)."""
    async with federating(auth_mesh) as running:
        yield running


def _url(gateway: Gateway, path: str = "") -> str:
    return f"http://{gateway.http_address}/mcp{path}"


async def _caller(mesh: Mesh, *rules: tuple[str, str], admin: bool = False) -> tuple[str, str]:
    """A new machine user with ``rules``: its id (the actor of its calls) and token."""
    created = await mesh.create_machine_user(
        f"calls-{uuid.uuid4().hex[:8]}", permissions=_permissions(*rules, admin=admin)
    )
    return created.machine_user.machine_user_id, created.token


async def _entries(mesh: Mesh, actor: str, calls: int) -> list[dict[str, Any]]:
    """The ``tool.call.*`` audit entries of ``actor``, once its ``calls`` calls each have
    a started and an ending entry, oldest first."""
    admin = mesh.bearer(mesh.admin_token)

    async def recorded() -> list[dict[str, Any]] | None:
        response = await mesh.http.get(
            "/v1/audit/entries",
            params={"action": "tool.call.*", "userId": actor, "pageSize": 1000},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json().get("entries", [])
        return entries[::-1] if len(entries) >= 2 * calls else None

    return await eventually(recorded, timeout_seconds=30, what=f"{calls} calls audited")


def _by_call(entries: list[dict[str, Any]]) -> dict[str, list[str]]:
    """The actions of ``entries`` by the call id they carry, in order."""
    calls: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        calls[entry["details"]["callId"]].append(entry["action"])
    return dict(calls)


def _ended(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """The details of the one entry that ends a call."""
    (ending,) = [e for e in entries if e["action"] != "tool.call.started"]
    details: dict[str, Any] = ending["details"]
    return details


def _error_info(failed: Mapping[str, Any]) -> dict[str, Any]:
    (info,) = [d for d in failed["error"]["details"] if d["@type"] == ERROR_INFO]
    return dict(info)


@pytest.mark.parametrize("mode", ERAS)
async def test_each_call_is_one_started_and_one_completed_event_sharing_its_call_id(
    auth_mesh: Mesh, gateway: Gateway, mode: str
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/echo"), ("allow", "up/fails"))
    async with connected(_url(gateway), token, mode) as client:
        await client.call_tool("up__echo", {"text": "hi"})
    async with connected(_url(gateway, f"/s/{UP}"), token, mode) as client:
        await client.call_tool("fails", {"reason": "no"})

    entries = await _entries(auth_mesh, actor, calls=2)

    calls = _by_call(entries)
    assert len(calls) == 2
    assert all(a == ["tool.call.started", "tool.call.completed"] for a in calls.values())
    echo, fails = [[e for e in entries if e["details"]["callId"] == c] for c in calls]
    assert [e["resource"] for e in echo + fails] == ["tools/up/echo"] * 2 + ["tools/up/fails"] * 2
    assert [e["outcome"] for e in echo + fails] == [
        "OUTCOME_UNKNOWN",
        "OUTCOME_SUCCESS",
        "OUTCOME_UNKNOWN",
        "OUTCOME_FAILURE",  # the tool's result said isError
    ]
    for entry in entries:
        details = entry["details"]
        assert (entry["actor"]["type"], entry["actor"]["id"]) == ("ACTOR_TYPE_MACHINE", actor)
        assert details["actor"] == {"type": "ACTOR_TYPE_MACHINE", "id": actor}
        assert entry["source"] == "/plugmesh/gateway"
        assert (details["server"], details["tool"]) in (("up", "echo"), ("up", "fails"))
        # A handshake-era client has a session id (a name only); 2026-07-28 has none.
        assert bool(details.get("sessionId")) is (mode == LEGACY)
    assert _ended(echo).get("isError", False) is False
    assert _ended(fails)["isError"] is True
    assert _ended(echo)["duration"].endswith("s")


async def test_arguments_are_keys_only_by_default_their_values_recorded_nowhere(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/*"))
    value = f"do-not-record-{uuid.uuid4().hex}"
    async with connected(_url(gateway), token, MODERN) as client:
        await client.call_tool("up__echo", {"text": value})
        await client.call_tool("up__add", {"a": 40, "b": 2})

    entries = await _entries(auth_mesh, actor, calls=2)

    started = [e["details"] for e in entries if e["action"] == "tool.call.started"]
    assert [s["arguments"] for s in started] == [
        {"text": REDACTED},
        {"a": REDACTED, "b": REDACTED},
    ]
    found = [p.name for p in auth_mesh.data_dir.rglob("*") if p.is_file() and _holds(p, value)]
    assert found == []


def _holds(path: Path, value: str) -> bool:
    return value.encode() in path.read_bytes()


@pytest.mark.parametrize(
    ("shown", "recorded"),
    [
        pytest.param(CallArguments.FULL, {"text": "shown", "n": 1.0}, id="full"),
        pytest.param(CallArguments.NONE, None, id="none"),
    ],
)
async def test_the_setting_shows_the_arguments_whole_or_not_at_all(
    auth_mesh: Mesh, shown: CallArguments, recorded: dict[str, Any] | None
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/echo"))
    async with federating(auth_mesh, shown) as other:
        async with connected(_url(other), token, MODERN) as client:
            await client.call_tool("up__echo", {"text": "shown", "n": 1})

        entries = await _entries(auth_mesh, actor, calls=1)

    (started,) = [e["details"] for e in entries if e["action"] == "tool.call.started"]
    assert started.get("arguments") == recorded


@pytest.mark.parametrize(
    ("rules", "tool", "message", "rule"),
    [
        pytest.param(
            (("allow", "up/*"), ("deny", "up/echo")),
            "echo",
            "up/echo: denied by rule 1 (deny up/echo)",
            {"rule": "deny up/echo", "rule_effect": "deny", "rule_pattern": "up/echo"},
            id="deny-rule",
        ),
        pytest.param(
            (("allow", "up/echo"),),
            "add",
            "up/add: no rule allows it",
            {"rule": "no rule allows it"},
            id="no-rule",
        ),
    ],
)
@pytest.mark.parametrize("path", ["", f"/s/{UP}"])
async def test_a_denied_call_is_audited_as_permission_denied_naming_the_rule(
    auth_mesh: Mesh,
    gateway: Gateway,
    rules: tuple[tuple[str, str], ...],
    tool: str,
    message: str,
    rule: dict[str, str],
    path: str,
) -> None:
    actor, token = await _caller(auth_mesh, *rules)
    name = tool if path else f"up__{tool}"
    async with connected(_url(gateway, path), token, MODERN) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool(name, {"a": 1, "b": 2, "text": "x"})

    entries = await _entries(auth_mesh, actor, calls=1)

    # The caller is told what an unknown tool's caller is told; the log knows more.
    assert (refused.value.code, str(refused.value)) == (-32602, f"Unknown tool: {name}")
    assert [e["action"] for e in entries] == ["tool.call.started", "tool.call.failed"]
    assert entries[1]["outcome"] == "OUTCOME_DENIED"
    assert entries[1]["resource"] == f"tools/up/{tool}"
    failed = _ended(entries)
    assert (failed["error"]["code"], failed["error"]["message"]) == (7, message)
    info = _error_info(failed)
    assert (info["reason"], info["domain"]) == ("TOOL_CALL_DENIED", "gateway.plugmesh")
    assert info["metadata"].items() >= {"server": "up", "tool": tool, **rule}.items()


@pytest.mark.parametrize(
    ("path", "name", "server", "tool"),
    [
        pytest.param("", "up__nope", "", "up__nope", id="exposed"),
        pytest.param(f"/s/{UP}", "nope", "up", "nope", id="own"),
    ],
)
async def test_an_unknown_tool_is_audited_as_not_found(
    auth_mesh: Mesh, gateway: Gateway, path: str, name: str, server: str, tool: str
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/*"))
    async with connected(_url(gateway, path), token, MODERN) as client:
        with pytest.raises(MCPError):
            await client.call_tool(name, {})

    entries = await _entries(auth_mesh, actor, calls=1)

    assert [e["action"] for e in entries] == ["tool.call.started", "tool.call.failed"]
    failed = _ended(entries)
    assert (failed.get("server", ""), failed["tool"]) == (server, tool)
    assert failed["error"]["code"] == 5  # NOT_FOUND
    assert _error_info(failed)["reason"] == "TOOL_NOT_FOUND"


async def test_an_upstream_timeout_is_audited_as_deadline_exceeded(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/slow"))
    async with connected(_url(gateway), token, MODERN) as client:
        with pytest.raises(MCPError):
            await client.call_tool("up__slow", {"steps": 200, "step_seconds": 0.05})

    failed = _ended(await _entries(auth_mesh, actor, calls=1))

    assert failed["error"]["code"] == 4  # DEADLINE_EXCEEDED
    info = _error_info(failed)
    assert info["reason"] == "UPSTREAM_TIMEOUT"
    assert info["metadata"]["timeout_seconds"] == "2"


@pytest.mark.parametrize("mode", ERAS)
async def test_a_cancelled_call_is_audited_as_cancelled(
    auth_mesh: Mesh, gateway: Gateway, mode: str
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/slow"))
    async with connected(_url(gateway), token, mode) as client:
        with anyio.CancelScope() as scope:

            async def cancel(progress: float, total: float | None, message: str | None) -> None:
                scope.cancel()  # the call is running: it reported progress

            await client.call_tool(
                "up__slow", {"steps": 100, "step_seconds": 0.01}, progress_callback=cancel
            )

        entries = await _entries(auth_mesh, actor, calls=1)

    assert [e["action"] for e in entries] == ["tool.call.started", "tool.call.failed"]
    failed = _ended(entries)
    assert failed["error"]["code"] == 1  # CANCELLED
    assert _error_info(failed)["reason"] == "TOOL_CALL_CANCELLED"


async def test_the_events_carry_the_calls_trace(auth_mesh: Mesh, gateway: Gateway) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/echo"))
    trace_id = uuid.uuid4().hex
    async with httpx.AsyncClient(timeout=20) as http:
        response = await http.post(
            _url(gateway),
            json=request(
                "tools/call",
                {"name": "up__echo", "arguments": {"text": "t"}, "_meta": MODERN_META},
            ),
            headers={
                **modern_headers(token, "tools/call", "up__echo"),
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
            },
        )
    assert "result" in answer(response), response.text

    entries = await _entries(auth_mesh, actor, calls=1)

    assert [e["traceId"] for e in entries] == [trace_id, trace_id]


async def test_an_upstream_that_dies_mid_call_is_audited_as_failed(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await _caller(auth_mesh, ("allow", "up/die"))
    try:
        async with connected(_url(gateway), token, MODERN) as client:
            with pytest.raises(MCPError) as raised:
                await client.call_tool("up__die", {})
        entries = await _entries(auth_mesh, actor, calls=1)
    finally:
        await ready(gateway)  # restarted, for whatever runs next

    assert raised.value.code == -32603
    assert [e["action"] for e in entries] == ["tool.call.started", "tool.call.failed"]
    failed = _ended(entries)
    assert failed["error"]["code"] == 14  # UNAVAILABLE
    assert _error_info(failed)["reason"] == "UPSTREAM_DIED"


async def test_the_audit_chain_verifies_after_the_calls(auth_mesh: Mesh, gateway: Gateway) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    response = await auth_mesh.http.post("/v1/audit/entries:verify", json={}, headers=admin)

    assert response.status_code == 200, response.text
    verified = response.json()
    assert verified["intact"] is True
    assert int(verified["entriesChecked"]) > 0


# -- the parts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shown", "recorded"),
    [
        pytest.param(
            CallArguments.KEYS,
            {"path": REDACTED, "options": REDACTED, "n": REDACTED, "none": REDACTED},
            id="keys",
        ),
        pytest.param(
            CallArguments.FULL,
            {"path": "/etc", "options": {"deep": [1, "x"]}, "n": 3, "none": None},
            id="full",
        ),
        pytest.param(CallArguments.NONE, {}, id="none"),
    ],
)
async def test_recorded_arguments_redact_every_value_by_default(
    shown: CallArguments, recorded: dict[str, Any]
) -> None:
    arguments = {"path": "/etc", "options": {"deep": [1, "x"]}, "n": 3, "none": None}

    assert recorded_arguments(arguments, shown) == recorded
    assert recorded_arguments({}, shown) == {}


async def test_the_arguments_setting_is_read_and_checked() -> None:
    variable = "PLUGMESH_GATEWAY_MCP_CALL_ARGUMENTS"

    assert McpSettings.from_env({}).call_arguments is CallArguments.KEYS
    assert McpSettings.from_env({variable: " Full "}).call_arguments is CallArguments.FULL
    assert McpSettings.from_env({variable: "none"}).call_arguments is CallArguments.NONE
    with pytest.raises(ValueError, match=f"{variable} must be one of keys, full, none"):
        McpSettings.from_env({variable: "values"})


class _OneTool:
    """Stands in for the Upstreams manager: one tool ``s__t``, which answers."""

    def __init__(self) -> None:
        self.calls = 0

    def resolve(self, name: str) -> tuple[Any, str]:
        return type("Server", (), {"name": "s"})(), "t"

    def find_tool(self, server: str | None, name: str) -> None:
        return None  # its definition is not what is tested

    async def call_tool(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        return {"content": [], "isError": False}


class _BrokenLog:
    """A call log whose store fails at ``failing`` (``started`` or ``finished``)."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    async def started(self, call: ToolCall) -> None:
        if self.failing == "started":
            raise CallNotRecorded("the disk is full")

    async def finished(self, call: ToolCall, outcome: Outcome, *, duration_seconds: float) -> None:
        if self.failing == "finished":
            raise CallNotRecorded("the disk is full")


_ADMIN = Caller("m", CallerKind.MACHINE, permissions=Policy(admin=True))


async def test_a_call_that_cannot_be_recorded_is_refused_not_made() -> None:
    upstreams = _OneTool()
    tools = FederatedTools(upstreams, calls=_BrokenLog("started"))  # type: ignore[arg-type]

    with pytest.raises(MCPError) as refused:
        await tools.call_tool(_ADMIN, None, "s__t", {}, meta={}, progress=_no_progress)

    assert refused.value.code == -32603
    assert "could not record the call" in str(refused.value)
    assert upstreams.calls == 0


async def test_a_call_whose_end_cannot_be_recorded_still_answers() -> None:
    upstreams = _OneTool()
    tools = FederatedTools(upstreams, calls=_BrokenLog("finished"))  # type: ignore[arg-type]

    result = await tools.call_tool(_ADMIN, None, "s__t", {}, meta={}, progress=_no_progress)

    assert result == {"content": [], "isError": False}
    assert upstreams.calls == 1


async def test_the_outbox_log_says_when_it_could_not_write_without_the_arguments(
    tmp_path: Path,
) -> None:
    """A database without the outbox table (the bus never started) fails the write."""
    database = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    bus = EventBus("gateway", database=database, nats_url="nats://127.0.0.1:1")
    calls = OutboxCallLog(database, bus, arguments=CallArguments.FULL)
    call = ToolCall("c-1", _ADMIN, "s", "t", {"secret": "value-never-told"})
    try:
        with pytest.raises(CallNotRecorded) as raised:
            await calls.started(call)
    finally:
        await database.close()

    assert "outbox" in str(raised.value)
    assert "value-never-told" not in str(raised.value)


async def _no_progress(done: float, total: float | None, message: str | None) -> None:
    return None


async def test_concurrent_calls_share_commits_and_every_event_is_kept(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'gateway.db'}")
    await database.upgrade(EVENT_TABLES)
    bus = EventBus("gateway", database=database, nats_url="nats://127.0.0.1:1")
    calls = OutboxCallLog(database, bus)
    transactions = 0
    opened = database.transaction

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[Any]:
        nonlocal transactions
        transactions += 1
        async with opened() as session:
            yield session

    database.transaction = counted  # type: ignore[method-assign]
    try:
        await asyncio.gather(
            *(calls.started(ToolCall(f"c-{i}", _ADMIN, "s", "t", {"n": i})) for i in range(100))
        )
        await calls.close()
        async with database.read() as session:
            ids = (await session.scalars(select(OutboxRecord.event_type))).all()
    finally:
        await database.close()

    assert ids == ["tool.call.started"] * 100
    assert transactions < 100
