"""The adversarial suite's fixtures: the auth mesh (tests/gateway/auth/mesh.py), the
callers the probes pose as, and the count of probes printed at the end of the run."""

from __future__ import annotations

import pytest_asyncio
from _pytest.terminal import TerminalReporter

from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import Mesh
from tests.security.credentials import Callers, prepare_callers
from tests.security.probes import PROBES

auth_mesh = _auth_fixtures.auth_mesh


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def callers(auth_mesh: Mesh) -> Callers:
    """Every kind of caller, ready (the deleted one refused already)."""
    return await prepare_callers(auth_mesh)


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    """Print how many probes the suite made, by surface."""
    if not PROBES:
        return
    by_surface = ", ".join(f"{surface} {count}" for surface, count in sorted(PROBES.items()))
    terminalreporter.write_line(
        f"security probes: {sum(PROBES.values())} ({by_surface})", bold=True
    )
