"""The console in headless Chromium: a signed-in page that records every console error
and page error, runs axe-core, and keeps screenshots as artifacts."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from tests.debian import require_binary
from tests.support.chromium import CHROMIUM_ARGS, keep_artifact

__all__ = ["AXE", "RENDER_TIMEOUT_MILLIS", "ConsolePage", "chromium"]

RENDER_TIMEOUT_MILLIS = 15_000
#: axe-core from tests/console/node_modules (`make console-tests`).
AXE = Path(__file__).parent / "node_modules" / "axe-core" / "axe.min.js"
_SERIOUS = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map(n => n.target).join(", ")}`);
}"""


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless."""
    executable = require_binary("chromium")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


class ConsolePage:
    """One browser tab on the console.

    Attributes:
        page: The Playwright page.
        errors: Every console error and uncaught page error so far.
    """

    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    @classmethod
    @asynccontextmanager
    async def opened(cls, browser: Browser, base_url: str) -> AsyncIterator[ConsolePage]:
        """A new tab (its own session storage) on ``base_url``/console."""
        # bypass_csp lets axe-core be injected; the page's own policy forbids inline code.
        context = await browser.new_context(
            viewport={"width": 1280, "height": 900}, bypass_csp=True
        )
        try:
            console = cls(await context.new_page(), base_url)
            await console.page.goto(f"{base_url}/console")
            yield console
        finally:
            await context.close()

    async def sign_in(self, token: str) -> None:
        """Sign in with ``token`` and wait for the navigation."""
        await self.page.fill("#token", token)
        await self.page.click("#sign-in-form button[type=submit]")
        await self.page.wait_for_selector("#nav-list a", timeout=RENDER_TIMEOUT_MILLIS)

    async def open(self, view: str) -> None:
        """Go to the view ``view`` by its link."""
        await self.page.click(f"#nav-{view}")
        await self.page.wait_for_selector(
            f'#nav-{view}[aria-current="page"]', timeout=RENDER_TIMEOUT_MILLIS
        )

    async def views(self) -> list[str]:
        """The views in the navigation."""
        links = await self.page.eval_on_selector_all("#nav-list a", "as => as.map(a => a.id)")
        return [link.removeprefix("nav-") for link in links]

    async def serious_violations(self) -> list[str]:
        """axe-core's serious and critical violations on the page as it is now."""
        if not AXE.is_file():
            message = f"{AXE} is missing; `make console-tests` installs it"
            if os.environ.get("CI") == "true":
                pytest.fail(message)
            pytest.skip(message)
        if not await self.page.evaluate("typeof axe !== 'undefined'"):
            await self.page.add_script_tag(path=str(AXE))
        found: list[str] = await self.page.evaluate(_SERIOUS)
        return found

    async def screenshot(self, tmp_path: Path, name: str, *, full_page: bool = True) -> Path:
        """A screenshot ``name``.png in ``tmp_path``, copied to ``$PLUGMESH_ARTIFACTS_DIR``
        as ``console-<name>.png`` when that is set (those of docs/console come from there)."""
        path = tmp_path / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        keep_artifact(path, f"console-{name}.png")
        return path

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console error: {message.text}")
