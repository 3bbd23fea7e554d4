"""Fixtures: one whole mesh per test module (:mod:`tests.gateway.auth.mesh`).

Tests using ``mesh`` run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.gateway.auth.mesh import Mesh, running_mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """A whole mesh shared by a module's tests. Once it has stopped, no token may be
    found in plain text anywhere under its data dir, logs included."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running
    assert running.leaks() == [], "tokens in plain text under the data dir"
