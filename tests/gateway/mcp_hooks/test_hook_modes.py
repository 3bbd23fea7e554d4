"""An admin sets a hook's mode over the one its plugin declares, through the admin API of
one gateway replica, and another replica applies it at once: disabled, the hook is not
called; in DRY_RUN its verdict is recorded and not applied; cleared, the declared mode
is back."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.app import Gateway
from gateway.mcpfront.hooks.declared import Mode
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp_hooks.calls import call, caller, decisions, ending, text
from tests.gateway.mcp_hooks.conftest import PRE, hooks, plan
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

HOOK = "hook-strict"


async def _set_mode(mesh: Mesh, gateway: Gateway, mode: str, expected: Mode | None) -> None:
    """Set ``mode`` through the mesh's own gateway (another replica than ``gateway``),
    and wait until ``gateway`` applies it."""
    response = await mesh.http.patch(
        f"/v1/mcp/hooks/{HOOK}",
        json={"modeOverride": mode},
        headers=mesh.bearer(mesh.admin_token),
    )
    assert response.status_code == 200, response.text

    async def applied() -> bool | None:
        overrides = gateway.mcp_servers.hook_modes
        current = {h.name: h.mode_override for h in overrides.views()}
        wanted = expected.value if expected is not None else 0
        return True if current.get(HOOK, 0) == wanted else None

    await eventually(applied, timeout_seconds=10, what=f"{HOOK} in {mode} on the other replica")


async def _listed(mesh: Mesh) -> dict[str, Any]:
    response = await mesh.http.get("/v1/mcp/hooks", headers=mesh.bearer(mesh.admin_token))
    assert response.status_code == 200, response.text
    (found,) = [h for h in response.json()["hooks"] if h["name"] == HOOK]
    return dict(found)


async def test_an_admin_disables_then_dry_runs_then_restores_a_hook_on_every_replica(
    auth_mesh: Mesh, gateway: Gateway
) -> None:
    strict = plan(HOOK, PRE, pre={"deny": "strictly no"})
    async with hooks(auth_mesh, gateway, strict):
        _, token = await caller(auth_mesh)
        assert (await call(gateway, token, "echo", {"text": "x"}))["isError"] is True

        await _set_mode(auth_mesh, gateway, "HOOK_MODE_DISABLED", Mode.DISABLED)
        listed = await _listed(auth_mesh)
        disabled_actor, token = await caller(auth_mesh)
        disabled = await call(gateway, token, "echo", {"text": "x"})

        await _set_mode(auth_mesh, gateway, "HOOK_MODE_DRY_RUN", Mode.DRY_RUN)
        dry_actor, token = await caller(auth_mesh)
        dry = await call(gateway, token, "echo", {"text": "x"})

        await _set_mode(auth_mesh, gateway, "HOOK_MODE_UNSPECIFIED", None)
        _, token = await caller(auth_mesh)
        restored = await call(gateway, token, "echo", {"text": "x"})

    assert listed["modeOverride"] == "HOOK_MODE_DISABLED"
    assert listed["mode"] == "HOOK_MODE_DISABLED"
    assert listed["declared"]["phases"] == [PRE]
    assert listed["servingInstances"] == 1
    assert text(disabled) == "echo:x"
    assert decisions(await ending(auth_mesh, disabled_actor)) == []
    assert text(dry) == "echo:x"
    assert decisions(await ending(auth_mesh, dry_actor)) == [(HOOK, "PRE_TOOL_CALL", "DENY", False)]
    assert restored["isError"] is True


async def test_a_mode_is_refused_for_a_name_no_plugin_could_have(auth_mesh: Mesh) -> None:
    response = await auth_mesh.http.patch(
        "/v1/mcp/hooks/Not_A_Name",
        json={"modeOverride": "HOOK_MODE_DISABLED"},
        headers=auth_mesh.bearer(auth_mesh.admin_token),
    )

    assert response.status_code == 400, response.text
    assert "hook.name" in response.text


async def test_only_admins_see_or_set_hook_modes(auth_mesh: Mesh) -> None:
    user = auth_mesh.bearer(auth_mesh.user_token)

    listed = await auth_mesh.http.get("/v1/mcp/hooks", headers=user)
    changed = await auth_mesh.http.patch(
        f"/v1/mcp/hooks/{HOOK}", json={"modeOverride": "HOOK_MODE_DISABLED"}, headers=user
    )

    assert (listed.status_code, changed.status_code) == (403, 403)
