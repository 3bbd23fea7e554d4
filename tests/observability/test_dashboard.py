"""The Grafana dashboard in ``deploy/grafana`` reads only series a running mesh exposes:
every query's series names, and the labels it matches and groups on, are scraped from a
real ``plugmesh up`` after some real traffic, so renaming a series or a label breaks it."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from launcher.processes import PROCESSES
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER
from tests.launcher.test_up import Up, _wait_ready, up
from tests.observability.promql import Query, read, variable_metrics
from tests.observability.scrape import Scrape, scrape
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)

__all__ = ["up"]  # the fixture, shared with tests.launcher.test_up

DASHBOARD = ROOT / "deploy" / "grafana" / "plugmesh.json"
#: Labels Prometheus adds to every series it scrapes.
TARGET_LABELS = frozenset({"job", "instance"})
#: Counters that move only when something fails: declared by every bus, with no sample
#: in a healthy mesh.
ONLY_ON_FAILURE = frozenset(
    {
        "plugmesh_events_publish_failures_total",
        "plugmesh_events_redelivered_total",
        "plugmesh_events_dead_lettered_total",
    }
)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", ())


def queries(dashboard: dict[str, Any]) -> list[tuple[str, Query]]:
    """``(panel title, what its query reads)`` for every query of every panel."""
    return [
        (panel["title"], read(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", ())
    ]


def variable_queries(dashboard: dict[str, Any]) -> list[str]:
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            found.append(query["query"] if isinstance(query, dict) else query)
    return found


def test_every_panel_reads_series_from_the_chosen_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}

    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    chosen = {"type": "prometheus", "uid": "${datasource}"}
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == chosen, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == chosen, panel["title"]
            assert read(target["expr"]).metrics, f"{panel['title']}: no series in {target}"
    titles = [panel["title"] for panel in panels(dashboard)]
    assert len(titles) == len(set(titles)), "titles tell panels apart"


async def _traffic(up: Up) -> None:
    """What an operator's mesh sees: HTTP calls (one refused), a gRPC call, a user
    created (an event the audit plugin consumes), and an MCP tool call through the hooks."""
    addresses: dict[str, str] = up.state()["addresses"]
    token = (up.data_dir / "admin.token").read_text().strip()
    admin = {"Authorization": f"Bearer {token}"}
    base = f"http://{addresses['PLUGMESH_GATEWAY_HTTP_ADDRESS']}"
    async with httpx.AsyncClient(base_url=base, headers=admin, timeout=30) as http:
        user = {"userId": "ada", "email": "ada@example.com", "displayName": "Ada"}
        assert (await http.post("/v1/users", json=user)).status_code == 200
        assert (await http.get("/v1/users")).status_code == 200
        assert (await http.get("/v1/users/nobody")).status_code == 404
        server = {
            "name": "probe",
            "stdio": {"command": sys.executable, "args": ["-m", SERVER, "stdio"], "cwd": str(ROOT)},
        }
        created = await http.post("/v1/mcp/servers", json=server)
        assert created.status_code == 200, created.text

        async def ready() -> bool | None:
            found = (await http.get("/v1/mcp/servers/probe")).json()["server"]
            return True if found.get("status", {}).get("state") == "SERVER_STATE_READY" else None

        await eventually(ready, timeout_seconds=30, what="the MCP server ready")

    async with grpc.aio.insecure_channel(addresses["PLUGMESH_GATEWAY_GRPC_ADDRESS"]) as channel:
        listed = await users_pb2_grpc.UserServiceStub(channel).ListUsers(
            users_pb2.ListUsersRequest(), metadata=(("authorization", f"Bearer {token}"),)
        )
        assert [u.user_id for u in listed.users if u.user_id == "ada"] == ["ada"]

    async with connected(f"{base}/mcp", token, MODERN) as client:
        assert "probe__echo" in [tool.name for tool in (await client.list_tools()).tools]
        echoed = await client.call_tool("probe__echo", {"text": "hi"})
        assert not echoed.is_error


async def _scrape_all(up: Up) -> dict[str, Scrape]:
    addresses: dict[str, str] = up.state()["addresses"]
    return {p.name: await scrape(addresses[p.metrics_address_var]) for p in PROCESSES}


def _union(scrapes: dict[str, Scrape]) -> tuple[dict[str, set[str]], set[str]]:
    """The label names of each sample name seen, and every declared sample name."""
    labels: dict[str, set[str]] = {}
    declared: set[str] = set()
    for found in scrapes.values():
        declared |= found.declared
        for name, sample_labels, _ in found.samples:
            labels.setdefault(name, set()).update(sample_labels)
    return labels, declared


async def test_every_dashboard_query_reads_series_a_running_mesh_exposes(up: Up) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    await _wait_ready(up)
    await _traffic(up)

    async def settled() -> dict[str, Scrape] | None:
        # The outbox relays, the audit plugin consumes and the samplers sample in the
        # background: wait for the series that only those move.
        scrapes = await _scrape_all(up)
        gateway, audit = scrapes["gateway"], scrapes["audit"]
        moved = (
            gateway.value("plugmesh_events_published_total", type="tool.call.completed") >= 1
            and audit.value("plugmesh_events_consumed_total", type="user.created") >= 1
            and audit.has("plugmesh_events_consumer_pending")
        )
        return scrapes if moved else None

    scrapes = await eventually(settled, timeout_seconds=30, what="the events counted")
    labels, declared = _union(scrapes)

    for variable in variable_queries(dashboard):
        for name in variable_metrics(variable):
            assert name in labels, f"variable {variable!r}: {name} is not exposed"
    for title, query in queries(dashboard):
        for name in query.metrics:
            if name in ONLY_ON_FAILURE:
                assert name in declared, f"{title}: {name} is not declared"
            else:
                assert name in labels, f"{title}: no sample of {name}"
        for name, matched in query.matched:
            if name in labels:
                unknown = matched - labels[name] - TARGET_LABELS
                assert not unknown, f"{title}: {name} has no label {sorted(unknown)}"
        seen = set().union(*(labels.get(name, set()) for name in query.metrics))
        if query.metrics <= labels.keys():
            unknown = query.grouped - seen - TARGET_LABELS
            assert not unknown, f"{title}: grouped by {sorted(unknown)}, which no series has"
