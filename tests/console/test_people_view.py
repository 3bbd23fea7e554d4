"""The console's people view in headless Chromium: a person's permissions edited as rules
change the "what may this caller do?" answer (the users plugin's CheckPermission), and a
new machine user's token is shown once."""

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
from tests.support.waiting import eventually
from tests.support.web_upstream import web_upstream

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
    async with web_upstream(auth_mesh):
        person = {
            "email": EMAIL,
            "role": "ROLE_USER",
            "permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "web/echo"}]},
        }
        admin = auth_mesh.bearer(auth_mesh.admin_token)
        created = await auth_mesh.http.post("/v1/users", json=person, headers=admin)
        assert created.status_code == 200, created.text
        yield auth_mesh


async def test_editing_a_persons_rules_changes_what_they_may_do(
    mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("people")
        await console.page.get_by_role("button", name=f"Open {EMAIL}").click()
        before = await may_call(console)
        denied = await explain(console, "web/add")

        await console.page.click("#permissions-form button:has-text('Add rule')")
        await console.page.get_by_label("Pattern").last.fill("web/a*")
        await console.page.get_by_label("Description").last.fill("arithmetic")
        await console.page.click("#permissions-form button[type=submit]")
        await console.page.wait_for_selector('tr[data-may-call="web/add"]')
        after = await may_call(console)
        allowed = await explain(console, "web/add")
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


async def test_editing_a_machine_users_rules_changes_what_it_may_do(
    mesh: Mesh, browser: Browser
) -> None:
    rules = users_pb2.Permissions(
        rules=[users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="web/echo")]
    )
    created = await mesh.create_machine_user("ci-edit", permissions=rules)
    base = f"http://{mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("people")
        await console.page.get_by_role("button", name="Open ci-edit").click()
        before = await may_call(console)
        denied = await explain(console, "web/add")

        form = console.page.locator("#machine-form")
        await form.locator("button:has-text('Add rule')").click()
        await form.get_by_label("Pattern").last.fill("web/a*")
        await form.get_by_label("Description").last.fill("arithmetic")
        await form.locator("button[type=submit]").click()
        await console.page.wait_for_selector('tr[data-may-call="web/add"]')
        after = await may_call(console)
        allowed = await explain(console, "web/add")
        # The list is read again on the machine_user.updated event.
        row = 'tr[data-machine-user="ci-edit"]:has-text("allow web/a*")'
        listed = await console.page.inner_text(row)
        violations = await console.serious_violations()
        errors = console.errors

    async def tools_of_its_token() -> list[str] | None:
        answer = await mesh.http.get("/console/api/tools", headers=mesh.bearer(created.token))
        names = sorted(tool["tool"] for tool in answer.json()["tools"])
        return names if names == ["add", "echo"] else None

    # The gateway follows machine_user.updated: the token's next requests have the new rules.
    tools = await eventually(tools_of_its_token, timeout_seconds=10, what="new rules applied")

    assert before == ["web/echo"]
    assert denied[0] == "false"
    assert after == ["web/add", "web/echo"]
    assert allowed[0] == "true"
    assert "rule 2: allow web/a* (arithmetic)" in allowed[1]
    assert "allow web/echo, allow web/a*" in listed
    assert tools == ["add", "echo"]
    assert violations == []
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
