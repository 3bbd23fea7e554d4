"""Plugins hook into every tool call: hook plugins, each a process of its own declaring
its hook in its contract, called by a real gateway in the auth mesh on its calls of our
test MCP server, with the SDK's client; each decision read back from the audit log."""

from __future__ import annotations

import httpx
import pytest
from mcp import MCPError

from gateway.app import Gateway
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import ERAS, MODERN, connected
from tests.gateway.mcp_hooks.calls import call, caller, decisions, ending, error_info, text
from tests.gateway.mcp_hooks.conftest import FILTER, POST, PRE, hooks, plan

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]


@pytest.mark.parametrize("mode", ERAS)
async def test_pre_hooks_change_the_arguments_in_priority_order_and_post_hooks_run_in_reverse(
    auth_mesh: Mesh, gateway: Gateway, mode: str
) -> None:
    actor, token = await caller(auth_mesh)
    plans = (
        plan("hook-b", PRE, POST, priority=20, pre={"append": "-b"}, post={"append": "+b"}),
        plan("hook-a", PRE, POST, priority=10, pre={"append": "-a"}, post={"append": "+a"}),
    )
    async with hooks(auth_mesh, gateway, *plans):
        result = await call(gateway, token, "echo", {"text": "x"}, mode)

    # The upstream echoed what the pre-hooks left: a, then b; the post-hooks ran b, then a.
    assert text(result) == "echo:x-a-b+b+a"
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [
        ("hook-a", "PRE_TOOL_CALL", "MODIFY", True),
        ("hook-b", "PRE_TOOL_CALL", "MODIFY", True),
        ("hook-b", "POST_TOOL_CALL", "REPLACE", True),
        ("hook-a", "POST_TOOL_CALL", "REPLACE", True),
    ]
    assert all(d["mode"] == "HOOK_MODE_ENFORCE" for d in details["decisions"])


async def test_a_deny_ends_the_chain_and_the_caller_reads_its_reason_as_a_tool_error(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)
    plans = (
        plan("hook-deny", PRE, priority=1, pre={"deny": "echo is closed today"}),
        plan("hook-late", PRE, priority=2, pre={"append": "-late"}),
    )
    async with hooks(auth_mesh, gateway, *plans):
        result = await call(gateway, token, "echo", {"text": "x"})

    assert result["isError"] is True
    assert text(result) == "echo is closed today"
    assert result["_meta"]["dev.plugmesh/deniedBy"] == "hook-deny"
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [("hook-deny", "PRE_TOOL_CALL", "DENY", True)]
    assert details["error"]["code"] == 7  # PERMISSION_DENIED
    info = error_info(details)
    assert info["reason"] == "TOOL_CALL_DENIED_BY_HOOK"
    assert info["metadata"]["hook"] == "hook-deny"


async def test_a_pre_hook_responds_in_the_upstreams_place_and_post_hooks_see_its_result(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)
    plans = (
        plan("hook-respond", PRE, priority=1, pre={"respond": "from the hook"}),
        plan("hook-after", POST, priority=0, post={"append": "!"}),
    )
    async with hooks(auth_mesh, gateway, *plans):
        # `die` would end the upstream: it is never called.
        result = await call(gateway, token, "die", {})

    assert text(result) == "from the hook!"
    assert gateway.mcp_upstreams.get("up") is not None
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [
        ("hook-respond", "PRE_TOOL_CALL", "RESPOND", True),
        ("hook-after", "POST_TOOL_CALL", "REPLACE", True),
    ]


async def test_a_post_hook_redacts_values_wherever_they_occur_in_the_result(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    _, token = await caller(auth_mesh)
    plans = (plan("hook-redact", POST, post={"redact": ["s3cr3t"]}),)
    async with hooks(auth_mesh, gateway, *plans):
        result = await call(gateway, token, "echo", {"text": "my s3cr3t and s3cr3t"})

    assert text(result) == "echo:my [redacted] and [redacted]"


async def test_attributes_set_by_a_hook_reach_the_hooks_after_it(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    _, token = await caller(auth_mesh)
    plans = (
        plan("hook-first", PRE, priority=1),
        plan("hook-second", PRE, priority=2, pre={"attributes": True}),
    )
    async with hooks(auth_mesh, gateway, *plans):
        result = await call(gateway, token, "echo", {"text": ""})

    assert text(result) == 'echo:{"hook-first": "pre"}'


@pytest.mark.parametrize(("mode", "revision"), [(MODERN, MODERN), ("legacy", "2025-11-25")])
async def test_a_hook_sees_the_protocol_revision_its_caller_speaks(
    auth_mesh: Mesh, gateway: Gateway, mode: str, revision: str
) -> None:
    _, token = await caller(auth_mesh)
    async with hooks(auth_mesh, gateway, plan("hook-revision", PRE, pre={"protocol": True})):
        result = await call(gateway, token, "echo", {"text": ""}, mode)

    assert text(result) == f"echo:{revision}"


@pytest.mark.parametrize(
    ("failure_mode", "denied"),
    [("FAILURE_MODE_FAIL_CLOSED", True), ("FAILURE_MODE_FAIL_OPEN", False)],
)
async def test_a_hook_slower_than_its_timeout_counts_as_its_failure_mode_says(
    auth_mesh: Mesh, gateway: Gateway, failure_mode: str, denied: bool
) -> None:
    actor, token = await caller(auth_mesh)
    slow = plan("hook-slow", PRE, pre={"sleep": 3}, failureMode=failure_mode, timeoutMs=300)
    async with hooks(auth_mesh, gateway, slow):
        result = await call(gateway, token, "echo", {"text": "x"})

    details = await ending(auth_mesh, actor)
    ((hook, _, verdict, applied),) = decisions(details)
    assert (hook, verdict, applied) == ("hook-slow", "FAILED", denied)
    assert "no answer within its timeout" in details["decisions"][0]["reason"]
    if denied:
        assert result["isError"] is True
        assert "hook-slow" in text(result)
    else:
        assert text(result) == "echo:x"


@pytest.mark.parametrize(
    ("failure_mode", "denied"),
    [("FAILURE_MODE_FAIL_CLOSED", True), ("FAILURE_MODE_FAIL_OPEN", False)],
)
async def test_a_killed_hook_plugin_counts_as_its_failure_mode_says(
    auth_mesh: Mesh, gateway: Gateway, failure_mode: str, denied: bool
) -> None:
    actor, token = await caller(auth_mesh)
    async with hooks(auth_mesh, gateway, plan("hook-dies", PRE, failureMode=failure_mode)) as ran:
        ran["hook-dies"].kill()
        await ran["hook-dies"].process.wait()
        result = await call(gateway, token, "echo", {"text": "x"})

    details = await ending(auth_mesh, actor)
    ((hook, _, verdict, applied),) = decisions(details)
    assert (hook, verdict, applied) == ("hook-dies", "FAILED", denied)
    assert (result.get("isError") is True) is denied


async def test_a_dry_run_hook_is_recorded_and_not_applied(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)
    trial = plan("hook-trial", PRE, pre={"deny": "would refuse"}, mode="HOOK_MODE_DRY_RUN")
    async with hooks(auth_mesh, gateway, trial):
        result = await call(gateway, token, "echo", {"text": "x"})

    assert text(result) == "echo:x"
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [("hook-trial", "PRE_TOOL_CALL", "DENY", False)]
    assert details["decisions"][0]["mode"] == "HOOK_MODE_DRY_RUN"
    assert details["decisions"][0]["reason"] == "would refuse"


async def test_a_hook_applies_only_to_the_tools_its_globs_match(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    _, token = await caller(auth_mesh)
    narrow = plan("hook-narrow", PRE, pre={"deny": "no"}, match=["up/add", "other/*"])
    async with hooks(auth_mesh, gateway, narrow):
        echoed = await call(gateway, token, "echo", {"text": "x"})
        added = await call(gateway, token, "add", {"a": 1, "b": 2})

    assert text(echoed) == "echo:x"
    assert added["isError"] is True


async def test_a_filter_hook_hides_tools_from_the_list_and_from_calls(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    _, token = await caller(auth_mesh)
    url = f"http://{gateway.http_address}/mcp"
    async with hooks(auth_mesh, gateway, plan("hook-hide", FILTER, hide=("up/add",))):
        async with connected(url, token, MODERN) as client:
            listed = {tool.name for tool in (await client.list_tools()).tools}
            with pytest.raises(MCPError, match="Unknown tool"):
                await client.call_tool("up__add", {"a": 1, "b": 2})
        async with connected(f"{url}/s/up", token, MODERN) as client:
            own = {tool.name for tool in (await client.list_tools()).tools}

    assert "up__echo" in listed
    assert "up__add" not in listed
    assert "echo" in own
    assert "add" not in own


async def test_each_hook_decision_is_counted_and_timed_in_the_gateways_metrics(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    _, token = await caller(auth_mesh)
    plans = (
        plan("hook-counted", PRE, POST, pre={"append": "!"}, post={"redact": ["x"]}),
        plan("hook-hider", FILTER, hide=("up/add",)),
    )
    async with hooks(auth_mesh, gateway, *plans):
        await call(gateway, token, "echo", {"text": "x"})
        async with connected(f"http://{gateway.http_address}/mcp", token, MODERN) as client:
            await client.list_tools()
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://{gateway.http_address}/metrics")).text

    assert _sample(scraped, "hook-counted", "pre", "modify", "true") == 1
    assert _sample(scraped, "hook-counted", "post", "redact", "true") == 1
    assert _sample(scraped, "hook-hider", "filter", "deny", "true") >= 1
    assert (
        'plugmesh_mcp_hook_duration_seconds_count{hook="hook-counted",phase="pre"} 1.0' in scraped
    )


def _sample(scraped: str, hook: str, phase: str, verdict: str, applied: str) -> float:
    # The exposition sorts the labels by name.
    labels = f'applied="{applied}",hook="{hook}",phase="{phase}",verdict="{verdict}"'
    prefix = f"plugmesh_mcp_hook_decisions_total{{{labels}}} "
    (line,) = [line for line in scraped.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))
