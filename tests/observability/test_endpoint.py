"""The metrics endpoint answers like a small HTTP server should."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from meshkit.metrics import MetricsEndpoint


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/metrics", 200),
        ("GET", "/metrics?name[]=x", 200),
        ("HEAD", "/metrics", 200),
        ("GET", "/", 404),
        ("POST", "/metrics", 405),
    ],
    ids=["get", "query_ignored", "head", "other_path", "post"],
)
async def test_the_endpoint_serves_only_get_and_head_of_metrics(
    method: str, path: str, status: int
) -> None:
    registry = CollectorRegistry()
    Counter("plugmesh_test_things", "Things.", registry=registry).inc(3)
    endpoint = MetricsEndpoint(registry, "127.0.0.1:0")
    await endpoint.start()
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.request(method, f"http://{endpoint.address}{path}")
    finally:
        await endpoint.stop()
        await endpoint.stop()  # safe twice
    assert response.status_code == status
    if method == "GET" and status == 200:
        assert "plugmesh_test_things_total 3.0" in response.text


async def test_openmetrics_is_served_to_a_client_that_asks_for_it() -> None:
    registry = CollectorRegistry()
    Counter("plugmesh_test_things", "Things.", registry=registry).inc()
    endpoint = MetricsEndpoint(registry, "127.0.0.1:0")
    await endpoint.start()
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(
                f"http://{endpoint.address}/metrics",
                headers={"Accept": "application/openmetrics-text; version=1.0.0"},
            )
    finally:
        await endpoint.stop()
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    assert response.text.endswith("# EOF\n")


async def test_a_taken_port_fails_at_start() -> None:
    first = MetricsEndpoint(CollectorRegistry(), "127.0.0.1:0")
    await first.start()
    try:
        second = MetricsEndpoint(CollectorRegistry(), first.address)
        with pytest.raises(OSError, match="in use"):
            await second.start()
    finally:
        await first.stop()
