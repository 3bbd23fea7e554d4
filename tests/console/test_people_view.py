"""The console's people view in headless Chromium: a person's permissions edited as rules
change the "what may this caller do?" answer (the users plugin's CheckPermission), and a
new machine user's token is shown once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.console.browser import ConsolePage
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp_upstreams.conftest import HttpServer
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]

EMAIL = "ada@example.com"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(auth_mesh: Mesh) -> AsyncIterator[Mesh]:
    """The auth mesh with our test MCP server as upstream ``web`` (READY), and a person
    allowed only ``web/echo``."""
    upstream = HttpServer()
    await upstream.start()
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    async def routed() -> bool | None:
        service = auth_mesh.gateway.catalog.service("mcp-servers")
        return True if service and service.serving and service.schema else None

    await eventually(routed, timeout_seconds=20, what="mcp-servers routed")
    added = await auth_mesh.http.post(
        "/v1/mcp/servers",
        json={"name": "web", "streamableHttp": {"url": upstream.url}},
        headers=admin,
    )
    assert added.status_code == 200, added.text

    async def ready() -> bool | None:
        server = (await auth_mesh.http.get("/v1/mcp/servers/web", headers=admin)).json()
        return True if server["server"]["status"]["state"] == "SERVER_STATE_READY" else None

    await eventually(ready, timeout_seconds=30, what="web READY")
    person = {
        "email": EMAIL,
        "role": "ROLE_USER",
        "permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "web/echo"}]},
    }
    created = await auth_mesh.http.post("/v1/users", json=person, headers=admin)
    assert created.status_code == 200, created.text
    yield auth_mesh
    await upstream.stop()


async def _may_call(console: ConsolePage) -> list[str]:
    await console.page.wait_for_selector("#may-call")
    found: list[str] = await console.page.eval_on_selector_all(
        "tr[data-may-call]", "rows => rows.map(r => r.dataset.mayCall)"
    )
    return sorted(found)


async def _explain(console: ConsolePage, target: str) -> tuple[str, str]:
    await console.page.fill("#explain-target", target)
    await console.page.click("#explain button[type=submit]")
    answer = console.page.locator("#explain-answer[data-allowed]")
    await answer.wait_for()
    allowed = await answer.get_attribute("data-allowed") or ""
    text = await answer.inner_text()
    await console.page.evaluate(
        "document.getElementById('explain-answer').removeAttribute('data-allowed')"
    )
    return allowed, text


async def test_editing_a_persons_rules_changes_what_they_may_do(
    mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("people")
        await console.page.get_by_role("button", name=f"Open {EMAIL}").click()
        before = await _may_call(console)
        denied = await _explain(console, "web/add")

        await console.page.click("#permissions-form button:has-text('Add rule')")
        await console.page.get_by_label("Pattern").last.fill("web/a*")
        await console.page.get_by_label("Description").last.fill("arithmetic")
        await console.page.click("#permissions-form button[type=submit]")
        await console.page.wait_for_selector('tr[data-may-call="web/add"]')
        after = await _may_call(console)
        allowed = await _explain(console, "web/add")
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "people")
        errors = console.errors

    assert before == ["web/echo"]
    assert denied[0] == "false"
    assert "denied by default" in denied[1]
    assert after == ["web/add", "web/echo"]
    assert allowed[0] == "true"
    assert "rule 2: allow web/a* (arithmetic)" in allowed[1]
    assert violations == []
    assert errors == []


async def test_a_new_machine_users_token_is_shown_once(mesh: Mesh, browser: Browser) -> None:
    base = f"http://{mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("people")
        form = console.page.locator("#machine-add")
        await form.get_by_label("Name").fill("ci-deploy")
        await form.get_by_label("Rules, one a line").fill("allow web/*\ndeny web/die")
        await form.locator("button[type=submit]").click()
        token = await console.page.inner_text("#new-token-value")
        listed = await console.page.inner_text('tr[data-machine-user="ci-deploy"]')
        await console.open("mesh")
        await console.open("people")
        await console.page.wait_for_selector('tr[data-machine-user="ci-deploy"]')
        shown_again = await console.page.locator("#new-token-value").count()
        errors = console.errors
    mesh.tokens.append(token)  # the leak scan looks for it in the data dir
    me = await mesh.http.get("/console/api/me", headers=mesh.bearer(token))

    assert token.startswith("pmk_")
    assert "allow web/*, deny web/die" in listed
    assert token not in listed
    assert shown_again == 0
    assert me.status_code == 200
    assert me.json()["kind"] == "MACHINE"
    assert errors == []


async def test_people_added_elsewhere_appear_on_the_page_without_a_reload(
    mesh: Mesh, browser: Browser
) -> None:
    base = f"http://{mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("people")
        await console.page.wait_for_selector(f'tr[data-user="{EMAIL}"]')
        created = await mesh.http.post(
            "/v1/users", json={"email": "grace@example.com"}, headers=mesh.bearer(mesh.admin_token)
        )
        assert created.status_code == 200, created.text
        await console.page.wait_for_selector('tr[data-user="grace@example.com"]')
        machine = await mesh.create_machine_user("made-elsewhere")
        await console.page.wait_for_selector('tr[data-machine-user="made-elsewhere"]')
        errors = console.errors

    assert machine.token
    assert errors == []
