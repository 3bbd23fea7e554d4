"""Fixtures: one whole mesh per test module (:mod:`tests.gateway.auth.mesh`), every
process serving its metrics on a port of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.gateway.auth.mesh import Mesh, running_mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """A whole mesh shared by a module's tests (``loop_scope="module"``)."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running
