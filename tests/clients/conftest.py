"""Fixtures: the whole mesh of :mod:`tests.gateway.auth` (one per test module, with its
leak scan at the end), which the clients in other languages call through the gateway.

Tests using ``auth_mesh`` run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from tests.gateway.auth.conftest import auth_mesh

__all__ = ["auth_mesh"]
