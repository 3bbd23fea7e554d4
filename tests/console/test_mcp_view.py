"""The console's MCP view in headless Chromium: an upstream MCP server added from the
page (our test server over Streamable HTTP) becomes ready with its tools, is disabled,
enabled and refreshed from the page, all through the gateway's ``/v1/mcp/servers`` API;
one added elsewhere appears on the page without a reload, and a server's state and last
error changing (it cannot be reached; it is killed, then back) show on the page as they
happen, with no reload, no click and no polling."""

from __future__ import annotations

import socket
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

#: Connecting to a new server and listing its tools may take a while on a loaded machine.
READY_MILLIS = 30_000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def upstream() -> AsyncIterator[HttpServer]:
    """Our test MCP server over Streamable HTTP."""
    server = HttpServer()
    await server.start()
    yield server
    await server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(auth_mesh: Mesh) -> Mesh:
    """The auth mesh once the gateway routes ``McpServerService``."""

    async def routed() -> bool | None:
        service = auth_mesh.gateway.catalog.service("mcp-servers")
        return True if service and service.serving and service.schema else None

    await eventually(routed, timeout_seconds=20, what="mcp-servers routed")
    return auth_mesh


async def test_a_server_added_on_the_page_shows_its_state_and_tools_and_can_be_disabled(
    mesh: Mesh, upstream: HttpServer, browser: Browser, tmp_path: Path
) -> None:
    base = f"http://{mesh.gateway.http_address}"
    row = 'tr[data-server="web"]'
    async with ConsolePage.opened(browser, base) as console:
        await console.sign_in(mesh.admin_token)
        await console.open("mcp")
        page = console.page
        await page.get_by_label("Name").fill("web")
        await page.get_by_label("URL or command").fill(upstream.url)
        await page.get_by_label("Description").fill("our test server")
        await page.click("#mcp-add button[type=submit]")
        await page.wait_for_selector(f'{row}[data-state="ready"]', timeout=READY_MILLIS)
        await page.get_by_role("button", name="Tools of web").click()
        await page.wait_for_selector('tr[data-tool="web__echo"]')
        shown_tools = await page.eval_on_selector_all(
            "tr[data-tool]", "rows => rows.map(r => r.dataset.tool)"
        )
        violations = await console.serious_violations()
        await console.screenshot(tmp_path, "mcp")

        await page.get_by_role("button", name="Disable web").click()
        await page.wait_for_selector(f'{row}[data-state="disabled"]', timeout=READY_MILLIS)
        disabled = (
            await mesh.http.get("/v1/mcp/servers/web", headers=mesh.bearer(mesh.admin_token))
        ).json()
        await page.get_by_role("button", name="Enable web").click()
        await page.wait_for_selector(f'{row}[data-state="ready"]', timeout=READY_MILLIS)
        await page.get_by_role("button", name="Refresh web").click()
        await page.wait_for_selector("#status:has-text('refreshed web')")

        # Added elsewhere (here: the API), it comes to the page by itself.
        added = await mesh.http.post(
            "/v1/mcp/servers",
            json={"name": "web2", "streamableHttp": {"url": upstream.url}},
            headers=mesh.bearer(mesh.admin_token),
        )
        assert added.status_code == 200, added.text
        await page.wait_for_selector(
            'tr[data-server="web2"][data-state="ready"]', timeout=READY_MILLIS
        )
        errors = console.errors

    assert "web__echo" in shown_tools
    assert disabled["server"]["enabled"] is False
    assert violations == []
    assert errors == []


def _dead_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/mcp"  # nothing listens there


async def test_a_server_failing_and_back_shows_its_state_and_last_error_without_a_reload(
    mesh: Mesh, browser: Browser, tmp_path: Path
) -> None:
    admin = mesh.bearer(mesh.admin_token)
    flaky = HttpServer()
    await flaky.start()
    base = f"http://{mesh.gateway.http_address}"
    try:
        async with ConsolePage.opened(browser, base) as console:
            await console.sign_in(mesh.admin_token)
            await console.open("mcp")
            page = console.page
            await page.wait_for_selector("#mcp-servers table, #mcp-servers p")
            for name, url in (("nowhere", _dead_url()), ("flaky", flaky.url)):
                added = await mesh.http.post(
                    "/v1/mcp/servers",
                    json={"name": name, "streamableHttp": {"url": url}},
                    headers=admin,
                )
                assert added.status_code == 200, added.text
            # Nothing listens: connecting fails, and the page is told.
            nowhere = 'tr[data-server="nowhere"]'
            await page.wait_for_selector(f'{nowhere}[data-state="failing"]', timeout=READY_MILLIS)
            nowhere_error = await page.inner_text(f"{nowhere} td.error")
            flaky_row = 'tr[data-server="flaky"]'
            await page.wait_for_selector(f'{flaky_row}[data-state="ready"]', timeout=READY_MILLIS)

            # Killed, then refreshed by another admin (here: the API): failing, with why.
            await flaky.stop()
            refreshed = await mesh.http.post(
                "/v1/mcp/servers/flaky:refresh", json={}, headers=admin
            )
            assert refreshed.status_code == 200, refreshed.text
            await page.wait_for_selector(f'{flaky_row}[data-state="failing"]', timeout=READY_MILLIS)
            await page.wait_for_function(
                "row => document.querySelector(row + ' td.error')?.textContent !== ''",
                arg=flaky_row,
                timeout=READY_MILLIS,
            )
            flaky_error = await page.inner_text(f"{flaky_row} td.error")
            violations = await console.serious_violations()
            await console.screenshot(tmp_path, "mcp-failing")

            # Back on the same port: it connects again by itself and the page shows it.
            await flaky.start()
            await mesh.http.post("/v1/mcp/servers/flaky:refresh", json={}, headers=admin)
            await page.wait_for_selector(f'{flaky_row}[data-state="ready"]', timeout=READY_MILLIS)
            errors = console.errors
    finally:
        await flaky.stop()
        for name in ("nowhere", "flaky"):
            await mesh.http.delete(f"/v1/mcp/servers/{name}", headers=admin)

    assert nowhere_error
    assert flaky_error
    assert violations == []
    assert errors == []
