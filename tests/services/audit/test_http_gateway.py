"""The audit API through the real gateway over HTTP: registry, gateway and plugin in
process, every server on a free port.

Every call through the gateway is anonymous here (the gateway signs identities only
once it authenticates bearer tokens, and it drops identity headers a client sends), so
these tests pin that every route, the seed's ``/api/plugins/logging/logs`` among them,
reaches the plugin and that nobody gets in without the gateway's word.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from launcher.natsd import NatsServer
from registry.app import RegistryServer
from tests.gateway import conftest as _gateway_fixtures
from tests.registry import conftest as _registry_fixtures
from tests.services.audit.conftest import ADMIN, Audit, running_audit, signed
from tests.support.waiting import eventually

# The registry's and the gateway's own test fixtures.
registry_config = _registry_fixtures.registry_config
start_registry = _registry_fixtures.start_registry
registry = _registry_fixtures.registry
gateway = _gateway_fixtures.gateway


@pytest.fixture
async def registered(
    tmp_path: Path, nats_server: NatsServer, registry: RegistryServer
) -> AsyncIterator[Audit]:
    """The audit plugin, registered with ``registry``."""
    async with running_audit(tmp_path, nats_server, registry_address=registry.address) as audit:
        yield audit


@pytest.fixture
async def http(gateway: Gateway, registered: Audit) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway, once it routes to the audit plugin."""
    async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}", timeout=10) as client:

        async def routed() -> bool | None:
            response = await client.get("/v1/audit/entries/probe")
            return True if response.status_code == 401 else None

        await eventually(routed, timeout_seconds=10, what="the gateway to route /v1/audit")
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/audit/entries", None, id="list"),
        pytest.param("GET", "/api/plugins/logging/logs?user_id=alice", None, id="list-seed-path"),
        pytest.param("GET", "/v1/audit/entries/e-1", None, id="get"),
        pytest.param("POST", "/v1/audit/entries", {"action": "x.y"}, id="create"),
        pytest.param("POST", "/api/plugins/logging/logs", {"action": "x.y"}, id="create-seed-path"),
        pytest.param("POST", "/v1/audit/entries:verify", {}, id="verify"),
    ],
)
async def test_every_route_reaches_the_plugin_and_anonymous_callers_get_401(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await http.request(method, path, json=body)
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 16


async def test_an_anonymous_export_is_refused_before_streaming(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/audit/entries:export")
    assert response.status_code == 401, response.text
    assert response.json()["code"] == 16


async def test_a_client_sent_identity_is_not_believed(
    http: httpx.AsyncClient, registered: Audit
) -> None:
    await registered.create(action="secret.stuff")
    response = await http.get("/v1/audit/entries", headers=dict(signed(ADMIN)))
    assert response.status_code == 401
