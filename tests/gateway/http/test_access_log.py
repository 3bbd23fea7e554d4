"""The gateway's access log and the trace it returns: one JSON-ready line per request
(``plugmesh.access``), ``traceresponse`` on every answer, ``x-request-id`` echoed."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway.access_log import AccessLog
from gateway.http import HttpSettings
from meshkit.config import ConfigError
from tests.gateway.http.conftest import SETTINGS, Mesh, running_mesh

MODULE_LOOP = pytest.mark.asyncio(loop_scope="module")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def logged_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    async with running_mesh(tmp_path_factory.mktemp("access")) as mesh:
        yield mesh


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    fields = ("kind", "method", "route", "path", "status", "duration_ms", "trace_id")
    return [
        {name: getattr(record, name) for name in (*fields, "request_id", "caller")}
        for record in caplog.records
        if record.name == "plugmesh.access"
    ]


@MODULE_LOOP
async def test_a_request_gets_one_line_with_its_route_status_trace_and_request_id(
    logged_mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plugmesh.access")
    headers = {"traceparent": TRACEPARENT, "x-request-id": "req-42"}
    response = await logged_mesh.client.get("/v1/things/t1?name=secret-value", headers=headers)
    assert response.status_code == 200
    [line] = access_lines(caplog)
    assert line["kind"] == "http"
    assert (line["method"], line["route"], line["status"]) == ("GET", "GET /v1/things/{id}", 200)
    assert line["path"] == "/v1/things/t1"  # without the query, which may carry data
    assert line["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert line["request_id"] == "req-42"
    assert line["caller"] == "-"  # this mesh checks no credentials
    assert line["duration_ms"] >= 0
    assert "secret-value" not in caplog.text


@MODULE_LOOP
async def test_the_answer_carries_the_trace_and_the_request_id(logged_mesh: Mesh) -> None:
    headers = {"traceparent": TRACEPARENT, "x-request-id": "req-7"}
    response = await logged_mesh.client.get("/v1/things/t1", headers=headers)
    assert response.headers["traceresponse"] == TRACEPARENT
    assert response.headers["x-request-id"] == "req-7"
    # The plugin saw the same trace the answer names.
    assert f"traceparent={TRACEPARENT}" in response.json()["metadata"]


@MODULE_LOOP
async def test_a_caller_without_a_trace_learns_the_one_the_gateway_started(
    logged_mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plugmesh.access")
    response = await logged_mesh.client.get("/v1/things/t1")
    returned = response.headers["traceresponse"]
    assert returned.startswith("00-")
    assert len(returned) == 55
    assert f"traceparent={returned}" in response.json()["metadata"]
    [line] = access_lines(caplog)
    assert line["trace_id"] == returned[3:35]
    assert "x-request-id" not in response.headers


@MODULE_LOOP
async def test_refusals_and_unknown_routes_are_logged_too(
    logged_mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plugmesh.access")
    missing = await logged_mesh.client.get("/v1/nowhere")
    assert missing.status_code == 404
    assert "traceresponse" in missing.headers
    [line] = access_lines(caplog)
    assert (line["route"], line["status"]) == ("unmatched", 404)


@MODULE_LOOP
async def test_switched_off_there_are_no_lines_and_the_trace_still_comes_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="plugmesh.access")
    settings = dataclasses.replace(SETTINGS, access_log=AccessLog(enabled=False))
    async with running_mesh(tmp_path, settings) as mesh:
        response = await mesh.client.get("/v1/things/t1")
    assert response.status_code == 200
    assert "traceresponse" in response.headers
    assert access_lines(caplog) == []


def test_the_setting_is_on_or_off() -> None:
    assert HttpSettings.from_env({}).access_log.enabled is True
    assert HttpSettings.from_env({"PLUGMESH_GATEWAY_ACCESS_LOG": "off"}).access_log.enabled is False
    with pytest.raises(ConfigError, match="PLUGMESH_GATEWAY_ACCESS_LOG"):
        HttpSettings.from_env({"PLUGMESH_GATEWAY_ACCESS_LOG": "sometimes"})
