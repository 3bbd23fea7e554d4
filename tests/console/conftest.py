"""Fixtures of the console's browser tests: one whole mesh per module
(:mod:`tests.gateway.auth.mesh`) and one headless Chromium per module.

Every test here is marked ``browser``; their modules run in the module's event loop
(``pytest.mark.asyncio(loop_scope="module")``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from playwright.async_api import Browser

from tests.console.browser import chromium
from tests.gateway.auth import conftest as _auth_fixtures

auth_mesh = _auth_fixtures.auth_mesh
node_plugin = _auth_fixtures.node_plugin


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: the console in headless Chromium; `-m 'not browser'` skips them"
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, shared by a module's tests."""
    async with chromium() as launched:
        yield launched
