from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2_grpc

from launcher.cli import registry_address
from launcher.output import render_table
from launcher.status import MeshView, print_status, status_rows
from meshkit.health import HealthServicer
from plugmesh.registry.v1 import registry_pb2
from tests.launcher.helpers import free_port, plugmesh_stand_in

SERVING = registry_pb2.HEALTH_STATUS_SERVING
UNREACHABLE = registry_pb2.HEALTH_STATUS_UNREACHABLE
NOW = 1_800_000_000.0


def _instance(
    service: str, address: str, health: registry_pb2.HealthStatus.ValueType, lease_in: float
) -> registry_pb2.Instance:
    expiry = timestamp_pb2.Timestamp()
    expiry.FromNanoseconds(int((NOW + lease_in) * 1e9))
    return registry_pb2.Instance(
        service=service, address=address, version="1.0.0", health=health, lease_expire_time=expiry
    )


SERVICES = [
    registry_pb2.Service(
        name="users",
        version="1.0.0",
        health=SERVING,
        instances=[
            _instance("users", "127.0.0.1:50061", SERVING, 9.4),
            _instance("users", "127.0.0.1:50071", UNREACHABLE, -3.0),
        ],
    ),
    registry_pb2.Service(name="audit", version="2.1.0", health=UNREACHABLE),
]


async def _list_services(
    request: registry_pb2.ListServicesRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> registry_pb2.ListServicesResponse:
    return registry_pb2.ListServicesResponse(services=SERVICES)


# A registry that only answers ListServices, with :data:`SERVICES`.
CANNED_REGISTRY = grpc.method_handlers_generic_handler(
    "plugmesh.registry.v1.RegistryService",
    {
        "ListServices": grpc.unary_unary_rpc_method_handler(
            _list_services,
            request_deserializer=registry_pb2.ListServicesRequest.FromString,
            response_serializer=registry_pb2.ListServicesResponse.SerializeToString,
        )
    },
)


@pytest.fixture
async def registry() -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((CANNED_REGISTRY,))
    health_pb2_grpc.add_HealthServicer_to_server(HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(0)


def test_status_without_a_registry_exits_1_and_says_why() -> None:
    address = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}

    result = subprocess.run(
        [sys.executable, "-m", "launcher.cli", "status", "--registry", address],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )

    assert result.returncode == 1
    assert f"cannot reach the registry at {address}" in result.stderr
    assert "plugmesh up" in result.stderr
    assert result.stdout == ""


async def test_status_prints_one_row_per_instance_and_the_registry(registry: str) -> None:
    out, err = io.StringIO(), io.StringIO()

    code = await print_status(registry, out, err, timeout_seconds=3.0)

    assert code == 0, err.getvalue()
    rows = [line.split() for line in out.getvalue().splitlines()]
    assert rows[0] == ["SERVICE", "VERSION", "INSTANCE", "HEALTH", "LEASE", "EXPIRES"]
    assert [row[:4] for row in rows[1:]] == [
        ["registry", "-", registry, "SERVING"],
        ["audit", "2.1.0", "-", "UNREACHABLE"],
        ["users", "1.0.0", "127.0.0.1:50061", "SERVING"],
        ["users", "1.0.0", "127.0.0.1:50071", "UNREACHABLE"],
    ]


def test_lease_expiry_is_shown_relative_to_now() -> None:
    view = MeshView("127.0.0.1:50050", "SERVING", SERVICES)

    leases = [row[4] for row in status_rows(view, now=NOW)]

    assert leases == ["-", "-", "in 9s", "expired 3s ago"]


def test_tables_pad_every_column_to_its_widest_cell() -> None:
    table = render_table(("A", "LONG HEADER"), [("wide cell", "x"), ("b", "y")])

    assert table.splitlines() == ["A          LONG HEADER", "wide cell  x", "b          y"]


def _up_state(data_dir: Path, pid: int, address: str) -> None:
    data_dir.mkdir()
    state = {"pid": pid, "addresses": {"PLUGMESH_REGISTRY_ADDRESS": address}}
    (data_dir / "up.json").write_text(json.dumps(state))


@pytest.mark.parametrize(
    ("flag", "env", "running", "expected"),
    [
        pytest.param(
            "10.0.0.1:1", {"PLUGMESH_REGISTRY_ADDRESS": "h:2"}, True, "10.0.0.1:1", id="flag"
        ),
        pytest.param(None, {"PLUGMESH_REGISTRY_ADDRESS": "h:2"}, True, "h:2", id="env"),
        pytest.param(
            None, {"PLUGMESH_REGISTRY_ADDRESS": "h:0"}, True, "127.0.0.1:43210", id="ephemeral"
        ),
        pytest.param(None, {}, True, "127.0.0.1:43210", id="up-state"),
        pytest.param(None, {}, False, "127.0.0.1:50050", id="default"),
    ],
)
def test_status_finds_the_registry(
    tmp_path: Path, flag: str | None, env: Mapping[str, str], running: bool, expected: str
) -> None:
    data_dir = tmp_path / "data"
    with plugmesh_stand_in() as pid:
        if running:
            _up_state(data_dir, pid, "127.0.0.1:43210")

        assert registry_address(flag, data_dir, env) == expected
