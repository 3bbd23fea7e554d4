"""The console's endpoints (gateway/console/endpoint.py) probed as every kind of caller
(tests/security/credentials.py): the page and its files are public; every feed needs a
token the gateway knows, and the admin ones an admin. Forged identity metadata counts
for nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.auth.mesh import Mesh
from tests.security.credentials import Caller, Callers
from tests.security.probes import DENIED, PROBES, THROUGH, UNAUTHENTICATED, http_outcome

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

#: (method, path, admin only) of every console endpoint.
ENDPOINTS = (
    ("GET", "/console/api/me", False),
    ("GET", "/console/api/mesh", False),
    ("GET", "/console/api/routes", False),
    ("GET", "/console/api/tools", False),
    ("GET", "/console/api/decision?tool=github/create_issue", False),
    ("GET", "/console/api/mcp", True),
    ("GET", "/console/api/events", True),
    ("GET", "/console/api/deadletters", True),
    ("POST", "/console/api/deadletters/1:replay", True),
)


def expected(caller: Caller, admin_only: bool) -> str:
    """What the console does with ``caller`` on an endpoint."""
    if not caller.authenticated:
        return UNAUTHENTICATED
    if admin_only and caller is not Caller.ADMIN:
        return DENIED
    return THROUGH


@pytest.mark.parametrize("caller", list(Caller), ids=lambda c: c.value)
async def test_every_console_endpoint_refuses_or_admits_the_caller_as_declared(
    auth_mesh: Mesh, callers: Callers, caller: Caller
) -> None:
    wrong: list[str] = []
    async with httpx.AsyncClient(base_url=auth_mesh.http.base_url, timeout=10) as http:
        for method, path, admin_only in ENDPOINTS:
            # Feeds stream until the caller leaves: the status line is what is probed.
            async with http.stream(method, path, headers=callers.headers(caller)) as response:
                got = THROUGH
                if response.status_code != 200:
                    await response.aread()
                    got = http_outcome(response)
            PROBES["console"] += 1
            if got != expected(caller, admin_only):
                wrong.append(f"{method} {path}: {response.status_code}")
    assert wrong == []


@pytest.mark.parametrize("path", ["/console", "/console/static/main.js"])
async def test_the_console_page_and_its_files_are_public(auth_mesh: Mesh, path: str) -> None:
    response = await auth_mesh.http.get(path)
    PROBES["console"] += 1

    assert response.status_code == 200
