"""Fixtures: the whole mesh of the authentication tests (:mod:`tests.gateway.auth.mesh`),
one per test module, so what a fuzzer creates or deletes stays in its own mesh.

Every test here is marked ``fuzz``. Tests using ``auth_mesh`` run in the module's event loop:
their modules set ``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

import pytest

from tests.gateway.auth import conftest as _auth_fixtures

auth_mesh = _auth_fixtures.auth_mesh


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "fuzz: generated-input suites (about 1.5 min); `-m 'not fuzz'` skips them"
    )
