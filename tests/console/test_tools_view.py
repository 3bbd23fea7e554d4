"""The console's "your tools" view in headless Chromium: a machine user that is not an
admin signs in, has no admin views, and sees the tools the MCP front lists to it with the
rule allowing each; any server/tool is explained as tools/call decides it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from plugmesh.users.v1 import users_pb2
from tests.console.browser import ConsolePage
from tests.console.decisions import explain, may_call
from tests.gateway.auth.mesh import Mesh
from tests.support.web_upstream import web_upstream

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_mesh(auth_mesh: Mesh) -> AsyncIterator[Mesh]:
    """The auth mesh with our test MCP server as upstream ``web`` (READY)."""
    async with web_upstream(auth_mesh):
        yield auth_mesh


async def test_a_machine_user_sees_its_own_tools_and_why(
    web_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    rules = users_pb2.Permissions(
        rules=[
            users_pb2.PermissionRule(
                effect=users_pb2.EFFECT_ALLOW, pattern="web/e*", description="the e tools"
            ),
            users_pb2.PermissionRule(effect=users_pb2.EFFECT_DENY, pattern="web/events"),
        ]
    )
    created = await web_mesh.create_machine_user("tools-reader", permissions=rules)
    base = f"http://{web_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(created.token)
        views = await console.views()
        await console.open("tools")
        tools = await may_call(console)
        why = await console.page.inner_text('tr[data-may-call="web/echo"]')
        denied = await explain(console, "web/events")
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "tools")
        errors = console.errors

    assert "people" not in views
    assert "tools" in views
    assert tools == ["web/echo", "web/env"]
    assert "allowed by rule 1: allow web/e* (the e tools)" in why
    assert denied[0] == "false"
    assert "denied by rule 2: deny web/events" in denied[1]
    assert violations == []
    assert errors == []
