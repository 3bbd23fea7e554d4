"""The console's audit view in headless Chromium: a search with filters, paged with the
log's cursor, an entry's detail, and the chain verified intact."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from tests.console.browser import ConsolePage
from tests.gateway.auth.mesh import Mesh
from tests.support.waiting import eventually

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]

PEOPLE = 5


async def _rows(console: ConsolePage) -> list[str]:
    found: list[str] = await console.page.eval_on_selector_all(
        "tr[data-entry]", "rows => rows.map(r => r.dataset.entry)"
    )
    return found


async def test_the_audit_log_is_searched_paged_read_and_verified(
    auth_mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    for n in range(PEOPLE):
        created = await auth_mesh.http.post(
            "/v1/users", json={"email": f"audited-{n}@example.com"}, headers=admin
        )
        assert created.status_code == 200, created.text

    async def recorded() -> bool | None:
        entries = await auth_mesh.http.get(
            "/v1/audit/entries", params={"action": "user.created", "pageSize": 100}, headers=admin
        )
        return True if len(entries.json().get("entries", [])) >= PEOPLE else None

    await eventually(recorded, timeout_seconds=20, what="the user.created entries recorded")
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        page = console.page
        await console.sign_in(auth_mesh.admin_token)
        await console.open("audit")
        await page.fill("#audit-search input[name=action]", "user.created")
        await page.fill("#audit-search input[name=pageSize]", "10")
        await page.click("#audit-search button[type=submit]")
        await page.wait_for_selector("caption:has-text('page 1')")
        everything = await _rows(console)

        await page.fill("#audit-search input[name=pageSize]", "2")
        await page.click("#audit-search button[type=submit]")
        await page.wait_for_selector("caption:has-text('page 1 (2)')")
        first = await _rows(console)
        await page.click("#audit-next")
        await page.wait_for_selector("caption:has-text('page 2')")
        second = await _rows(console)
        await page.click("#audit-previous")
        await page.wait_for_selector("caption:has-text('page 1')")
        again = await _rows(console)

        await page.locator(f'tr[data-entry="{first[0]}"] button').click()
        await page.wait_for_selector("#audit-entry dl")
        detail = await page.inner_text("#audit-entry")
        await page.click("#verify")
        await page.wait_for_selector("#audit-verify[data-intact]")
        intact = await page.get_attribute("#audit-verify", "data-intact")
        verdict = await page.inner_text("#audit-verify")
        violations = await console.serious_violations()
        await page.evaluate("window.scrollTo(0, 0)")
        await console.screenshot(tmp_path, "audit")
        errors = console.errors
    entry = (await auth_mesh.http.get(f"/v1/audit/entries/{first[0]}", headers=admin)).json()

    assert len(everything) >= PEOPLE
    assert len(first) == len(second) == 2
    assert not set(first) & set(second)
    assert first + second == everything[:4]
    assert again == first
    assert entry["entry"]["hash"] in detail
    assert "user.created" in detail
    assert intact == "true"
    assert "entries checked" in verdict
    assert violations == []
    assert errors == []


async def test_new_entries_come_to_the_first_page_without_a_reload(
    auth_mesh: Mesh, browser: Browser
) -> None:
    base = f"http://{auth_mesh.gateway.http_address}"
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(auth_mesh.admin_token)
        await console.open("audit")
        await console.page.wait_for_selector("caption:has-text('page 1')")
        created = await auth_mesh.http.post(
            "/v1/users",
            json={"email": "late@example.com"},
            headers=auth_mesh.bearer(auth_mesh.admin_token),
        )
        user_id = created.json()["user"]["userId"]
        await console.page.wait_for_selector(f"#audit-results td:has-text('users/{user_id}')")
        errors = console.errors

    assert errors == []
