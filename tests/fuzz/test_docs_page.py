"""The gateway's ``/docs`` page (Swagger UI from installed assets) in headless Chromium:
once its JavaScript has rendered ``/openapi.json``, every operation of every registered
service is on the page. A screenshot is kept in the test's tmp dir (and copied to
``$PLUGMESH_ARTIFACTS_DIR`` when that is set).

Chromium is Debian's (tools/debian-packages.txt), driven by Playwright; Playwright's own
browser downloads are never used.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import async_playwright

from tests.debian import require_binary
from tests.gateway.auth.mesh import SERVICES, Mesh
from tests.support.chromium import CHROMIUM_ARGS, keep_artifact

pytestmark = [pytest.mark.fuzz, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

RENDER_TIMEOUT_MILLIS = 30_000
#: What the page shows for each operation: its method and its path.
_RENDERED = """() => Array.from(document.querySelectorAll('.opblock')).map(block => [
    block.querySelector('.opblock-summary-method')?.textContent.trim().toLowerCase(),
    block.querySelector('.opblock-summary-path')?.getAttribute('data-path'),
])"""


async def test_the_docs_page_renders_every_operation_of_every_service(
    auth_mesh: Mesh, tmp_path: Path
) -> None:
    chromium = require_binary("chromium")
    document = (await auth_mesh.http.get("/openapi.json")).json()
    expected = {(m, path) for path, item in document["paths"].items() for m in item}
    tags = {
        tag for item in document["paths"].values() for op in item.values() for tag in op["tags"]
    }
    services = [auth_mesh.gateway.catalog.service(name) for name in ("registry", *SERVICES)]
    registered = {grpc for service in services if service for grpc in service.grpc_services}
    screenshot = tmp_path / "docs.png"

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.goto(f"http://{auth_mesh.gateway.http_address}/docs")
            await page.wait_for_function(
                f"document.querySelectorAll('.opblock').length >= {len(expected)}",
                timeout=RENDER_TIMEOUT_MILLIS,
            )
            rendered = {(m, p) for m, p in await page.evaluate(_RENDERED)}
            shown_tags = set(
                await page.eval_on_selector_all(
                    ".opblock-tag", "tags => tags.map(t => t.getAttribute('data-tag'))"
                )
            )
            title = await page.title()
            await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    keep_artifact(screenshot, "docs-page.png")

    assert rendered == expected
    assert len(registered) == len(services)
    assert registered <= tags
    assert shown_tags == tags
    assert title
    assert screenshot.stat().st_size > 10_000


async def test_authorize_then_try_it_out_lists_the_users_on_the_docs_page(
    auth_mesh: Mesh, tmp_path: Path
) -> None:
    chromium = require_binary("chromium")
    email = "docs-page-admin@example.com"
    created = await auth_mesh.http.post(
        "/v1/users",
        json={"email": email, "role": "ROLE_ADMIN"},
        headers=auth_mesh.bearer(auth_mesh.admin_token),
    )
    assert created.status_code == 200, created.text
    screenshot = tmp_path / "docs-try-it-out.png"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"http://{auth_mesh.gateway.http_address}/docs")
            await page.click("button.authorize", timeout=RENDER_TIMEOUT_MILLIS)
            await page.fill(".auth-container input", auth_mesh.admin_token)
            await page.click(".auth-btn-wrapper button.authorize")
            await page.click(".btn-done")
            # The first of the operations at GET /v1/users (its alias has another path).
            path = page.locator('.opblock-summary-path[data-path="/v1/users"]')
            operation = page.locator(".opblock-get", has=path).first
            await operation.locator(".opblock-summary").click()
            await operation.locator(".try-out__btn").click()
            await operation.locator(".execute").click()
            status = operation.locator(
                ".live-responses-table tr.response .response-col_status"
            ).first
            await status.wait_for(timeout=RENDER_TIMEOUT_MILLIS)
            shown_status = (await status.inner_text()).strip()
            answer = operation.locator(".live-responses-table .microlight").first
            body = await answer.inner_text()
            await page.screenshot(path=str(screenshot), full_page=True)
        finally:
            await browser.close()
    keep_artifact(screenshot, "docs-try-it-out.png")

    document = (await auth_mesh.http.get("/openapi.json")).json()
    assert document["paths"]["/v1/users"]["get"]["security"] == [{"bearer": []}]
    assert "Admins only" in document["paths"]["/v1/users"]["get"]["description"]
    public = document["paths"]["/v1/tokens:validate"]["post"]  # works with no credential
    assert public["security"] == [{}, {"bearer": []}]
    assert shown_status.startswith("200"), shown_status
    assert email in body
    assert auth_mesh.admin_token not in body
    assert errors == []
