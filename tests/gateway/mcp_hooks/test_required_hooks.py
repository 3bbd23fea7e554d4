"""A hook the operator requires (``PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS``) does not vanish
with its plugin: while no plugin serves it every call is denied and recorded as its
failure, while its plugin serves it calls pass as it says, and its failures count as
denies even when it declares FAIL_OPEN."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.app import Gateway
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.federating import federating
from tests.gateway.mcp_hooks.calls import call, caller, decisions, ending, text
from tests.gateway.mcp_hooks.conftest import PRE, hooks, plan

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

GUARD = "hook-guard"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    """A gateway federating ``up`` that requires the hook ``hook-guard``."""
    async with federating(auth_mesh, required_hooks=frozenset({GUARD})) as running:
        yield running


async def test_every_call_is_denied_while_no_plugin_serves_a_required_hook(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)

    result = await call(gateway, token, "echo", {"text": "x"})

    details = await ending(auth_mesh, actor)
    assert result["isError"] is True
    assert GUARD in text(result)
    assert decisions(details) == [(GUARD, "PRE_TOOL_CALL", "FAILED", True)]
    reason = details["decisions"][0]["reason"]
    assert f"no plugin of the mesh serves the required hook {GUARD!r}" in reason
    (listed,) = [hook for hook in gateway.mcp_servers.hook_modes.views() if hook.name == GUARD]
    assert listed.required
    assert listed.serving_instances == 0


async def test_calls_pass_while_the_required_hooks_plugin_serves_and_stop_when_it_leaves(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    async with hooks(auth_mesh, gateway, plan(GUARD, PRE)):
        served_actor, token = await caller(auth_mesh)
        served = await call(gateway, token, "echo", {"text": "x"})
    # The plugin deregistered on its way out: its hook is absent again.
    _, token = await caller(auth_mesh)
    left = await call(gateway, token, "echo", {"text": "y"})

    assert text(served) == "echo:x"
    assert decisions(await ending(auth_mesh, served_actor)) == [
        (GUARD, "PRE_TOOL_CALL", "ALLOW", False)
    ]
    assert left["isError"] is True


async def test_a_required_hooks_failure_denies_even_when_it_declares_fail_open(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    actor, token = await caller(auth_mesh)
    lenient = plan(GUARD, PRE, failureMode="FAILURE_MODE_FAIL_OPEN")
    async with hooks(auth_mesh, gateway, lenient) as ran:
        ran[GUARD].kill()
        await ran[GUARD].process.wait()
        result = await call(gateway, token, "echo", {"text": "x"})

    assert result["isError"] is True
    assert decisions(await ending(auth_mesh, actor)) == [(GUARD, "PRE_TOOL_CALL", "FAILED", True)]


async def test_hooks_that_are_not_required_are_not_listed_as_required(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    async with hooks(auth_mesh, gateway, plan("hook-other", PRE)):
        views = {hook.name: hook for hook in gateway.mcp_servers.hook_modes.views()}

    assert views[GUARD].required
    assert not views["hook-other"].required
