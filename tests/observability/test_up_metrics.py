"""Under ``plugmesh up`` every process is its own OS process, serving its own metrics."""

from __future__ import annotations

import importlib.metadata

import pytest

from launcher.processes import PROCESSES
from tests.launcher.test_up import Up, _wait_ready, up
from tests.observability.scrape import scrape

pytestmark = pytest.mark.timeout(120)

__all__ = ["up"]  # the fixture, shared with tests.launcher.test_up


async def test_every_process_started_by_plugmesh_up_serves_its_metrics(up: Up) -> None:
    await _wait_ready(up)
    addresses: dict[str, str] = up.state()["addresses"]
    output = up.text()
    served = {}
    for process in PROCESSES:
        address = addresses[process.metrics_address_var]
        assert not address.endswith(":0"), "port 0 was resolved to a free port"
        assert f"metrics http://{address}/metrics" in output, "the progress shows where"
        served[process.name] = await scrape(address)

    assert len({addresses[p.metrics_address_var] for p in PROCESSES}) == len(PROCESSES)
    version = importlib.metadata.version("plugmesh")
    for name, found in served.items():
        assert "grpc_server_handled" in found.families, name
        # What every process exports besides its own series, for the usual dashboards.
        assert found.value("process_cpu_seconds_total") > 0, name
        assert found.value("process_resident_memory_bytes") > 0, name
        assert "python_info" in found.families, name
        assert "python_gc_collections" in found.families, name
        assert found.value("plugmesh_build_info", version=version, process=name) == 1, name
    assert "plugmesh_gateway_http_requests" in served["gateway"].families
    assert "plugmesh_events_published" in served["machine-users"].families
    registered = served["registry"].value(
        "grpc_server_handled_total",
        grpc_service="plugmesh.registry.v1.RegistryService",
        grpc_method="RegisterInstance",
        grpc_code="OK",
    )
    assert registered >= len(PROCESSES) - 1, "every other process registered"
    # The first admin was created through the machine-users plugin's gRPC server.
    created = served["machine-users"].value(
        "grpc_server_handled_total", grpc_method="CreateMachineUser", grpc_code="OK"
    )
    assert created == 1
