"""Browsers on other origins: preflights answered and answers readable for the origins an
operator allows (``PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS``), nothing for others, and
nothing at all by default."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.http import HttpSettings
from gateway.http.cors import CorsPolicy, parse_origins
from meshkit.config import ConfigError
from tests.gateway.http.conftest import SETTINGS, Mesh, running_mesh

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")

ALLOWED = "https://console.example:8443"
PREFLIGHT = {
    "Origin": ALLOWED,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cors_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    settings = dataclasses.replace(SETTINGS, cors=CorsPolicy(frozenset({ALLOWED})))
    async with running_mesh(tmp_path_factory.mktemp("cors"), settings) as mesh:
        yield mesh


@MODULE_LOOP
async def test_a_preflight_from_an_allowed_origin_is_answered_with_what_it_may_send(
    cors_mesh: Mesh,
) -> None:
    response = await cors_mesh.client.options("/v1/things/t1", headers=PREFLIGHT)
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "GET" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert int(response.headers["access-control-max-age"]) > 0
    assert "Origin" in response.headers["vary"]


@MODULE_LOOP
async def test_an_answer_to_an_allowed_origin_is_readable_by_its_page(cors_mesh: Mesh) -> None:
    response = await cors_mesh.client.get("/v1/things/t1", headers={"Origin": ALLOWED})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"]
    # An error answer too: the page must be able to read why it failed.
    missing = await cors_mesh.client.get("/v1/nowhere", headers={"Origin": ALLOWED})
    assert missing.status_code == 404
    assert missing.headers["access-control-allow-origin"] == ALLOWED


@MODULE_LOOP
async def test_another_origin_gets_no_cors_headers_and_its_preflight_is_refused(
    cors_mesh: Mesh,
) -> None:
    other = {**PREFLIGHT, "Origin": "https://evil.example"}
    preflight = await cors_mesh.client.options("/v1/things/t1", headers=other)
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers
    response = await cors_mesh.client.get("/v1/things/t1", headers={"Origin": other["Origin"]})
    assert response.status_code == 200  # served, but a browser will not show it to the page
    assert "access-control-allow-origin" not in response.headers


@MODULE_LOOP
async def test_without_allowed_origins_there_is_no_cors(tmp_path: Path) -> None:
    async with running_mesh(tmp_path, SETTINGS) as mesh:
        preflight = await mesh.client.options("/v1/things/t1", headers=PREFLIGHT)
        assert preflight.status_code == 405
        response = await mesh.client.get("/v1/things/t1", headers={"Origin": ALLOWED})
        assert "access-control-allow-origin" not in response.headers


def test_the_setting_takes_origins_and_star_and_refuses_what_is_not_an_origin() -> None:
    variable = "PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS"
    settings = HttpSettings.from_env({variable: "https://A.example, http://localhost:3000"})
    assert settings.cors.allowed_origins == {"https://a.example", "http://localhost:3000"}
    assert HttpSettings.from_env({}).cors.enabled is False
    assert parse_origins("*", variable) == {"*"}
    assert CorsPolicy(frozenset({"*"})).allows(b"https://anything.example")
    for bad in ("console.example", "https://x.example/path", "ftp://x.example"):
        with pytest.raises(ConfigError, match=variable):
            parse_origins(bad, variable)
