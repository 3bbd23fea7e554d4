"""The users API through the real gateway over HTTP: registry, gateway and plugin in
process, every server on a free port.

The gateway does not authenticate yet (no bearer tokens, so it signs no identity), and
it drops identity headers a client sends; every call through it is therefore
anonymous, and the plugin answers 401. These tests pin what already holds: the
plugin's routes, the seed's paths among them, reach it through the gateway, and nobody
gets in without the gateway's word. The lifecycle over HTTP waits for the gateway's auth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from launcher.natsd import NatsServer
from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY, signing_key, to_metadata
from registry.app import RegistryServer
from services.users.app import UsersPlugin
from tests.gateway import conftest as _gateway_fixtures
from tests.registry import conftest as _registry_fixtures
from tests.services.users.conftest import running_plugin
from tests.services.users.support import ADMIN, DEADLINE_SECONDS, SECRET
from tests.support.waiting import eventually

# The registry's and the gateway's own test fixtures.
registry_config = _registry_fixtures.registry_config
start_registry = _registry_fixtures.start_registry
registry = _registry_fixtures.registry
gateway = _gateway_fixtures.gateway


@pytest.fixture
async def registered(
    tmp_path: Path, nats_server: NatsServer, registry: RegistryServer
) -> AsyncIterator[UsersPlugin]:
    """The users plugin, registered with ``registry``."""
    async with running_plugin(
        tmp_path / "users", nats_server.url, registry_address=registry.address
    ) as plugin:
        yield plugin


@pytest.fixture
async def http(gateway: Gateway, registered: UsersPlugin) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the gateway, once it routes to the users plugin."""
    async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}", timeout=10) as client:

        async def routed() -> bool | None:
            response = await client.get("/v1/users/probe")
            return True if response.status_code == 401 else None

        await eventually(
            routed, timeout_seconds=DEADLINE_SECONDS, what="the gateway to route /v1/users"
        )
        yield client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        pytest.param("GET", "/v1/users/alice", None, id="get"),
        pytest.param("GET", "/v1/users", None, id="list"),
        pytest.param("GET", "/api/plugins/user-management/users", None, id="list-seed-path"),
        pytest.param("POST", "/v1/users", {"userId": "alice"}, id="create"),
        pytest.param("PATCH", "/v1/users/alice", {"displayName": "A"}, id="update"),
        pytest.param("DELETE", "/v1/users/alice", None, id="delete"),
        pytest.param(
            "DELETE", "/api/plugins/user-management/users/alice", None, id="delete-seed-path"
        ),
        pytest.param(
            "PATCH",
            "/api/plugins/user-management/users/alice/permissions",
            {"permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "*"}]}},
            id="permissions-seed-path",
        ),
        pytest.param(
            "POST",
            "/v1/users/alice:checkPermission",
            {"server": "github", "tool": "x"},
            id="check-permission",
        ),
    ],
)
async def test_every_route_reaches_the_plugin_and_anonymous_callers_get_401(
    http: httpx.AsyncClient, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = await http.request(method, path, json=body)
    assert response.status_code == 401, response.text
    status = response.json()
    assert status["code"] == 16
    assert status["details"][0]["reason"] == "AUTHENTICATION_REQUIRED"


async def test_an_identity_a_client_sends_is_not_believed(http: httpx.AsyncClient) -> None:
    key = signing_key(SECRET)
    assert key is not None
    # Even correctly signed (a leaked key): the gateway drops identity headers.
    forged = dict(to_metadata(ADMIN, key))
    assert set(forged) == {IDENTITY_KEY, SIGNATURE_KEY}
    response = await http.get("/v1/users", headers=forged)
    assert response.status_code == 401
