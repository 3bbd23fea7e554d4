"""Fixtures: one whole mesh per test module (:mod:`tests.gateway.auth.mesh`).

Tests using ``auth_mesh`` run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.gateway.auth.mesh import SECRET, Mesh, running_mesh
from tests.gateway.node import NAME, NodePlugin, start_node
from tests.support.waiting import eventually


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def auth_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """A whole mesh shared by a module's tests. Once it has stopped, no token may be
    found in plain text anywhere under its data dir, logs included."""
    async with running_mesh(tmp_path_factory.mktemp("mesh")) as running:
        yield running
    assert running.leaks() == [], "tokens in plain text under the data dir"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node_plugin(auth_mesh: Mesh) -> AsyncIterator[NodePlugin]:
    """The Node test plugin (tests/node/plugin.js) in the module's mesh, with its NATS,
    once the gateway routes it. Its log is under the mesh's data dir, so the leak scan
    reads it too. Modules using it carry ``tests.gateway.node.NEEDS_NODE``."""
    log = auth_mesh.data_dir / "logs" / "node.log"
    plugin = await start_node(auth_mesh.registry.address, SECRET, log, nats_url=auth_mesh.nats.url)
    try:

        async def routed() -> bool | None:
            service = auth_mesh.gateway.catalog.service(NAME)
            return True if service and service.serving and service.schema else None

        await eventually(routed, timeout_seconds=20, what=f"{NAME} routed by the gateway")
        yield plugin
    finally:
        await plugin.stop()
