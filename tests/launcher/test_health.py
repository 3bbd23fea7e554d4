"""``plugmesh health <name>``: a container's gRPC health check, exit code 0 when SERVING."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2_grpc

from launcher.health import dial_address
from meshkit.health import NOT_SERVING, HealthServicer
from tests.launcher.helpers import free_port


@pytest.fixture
async def served() -> AsyncIterator[tuple[HealthServicer, int]]:
    health = HealthServicer()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield health, port
    await server.stop(0)


async def plugmesh_health(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run the real ``plugmesh health`` command in a child process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launcher.cli",
        "health",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=30)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_a_serving_process_is_healthy_when_its_address_listens_on_every_interface(
    served: tuple[HealthServicer, int],
) -> None:
    _, port = served

    code, out, err = await plugmesh_health(
        "users", env={"PLUGMESH_USERS_ADDRESS": f"0.0.0.0:{port}"}
    )

    assert (code, out.strip()) == (0, "SERVING"), err


async def test_a_process_shutting_down_is_unhealthy(served: tuple[HealthServicer, int]) -> None:
    health, port = served
    await health.set("", NOT_SERVING)

    code, out, _ = await plugmesh_health("audit", "--address", f"127.0.0.1:{port}", env={})

    assert (code, out.strip()) == (1, "NOT_SERVING")


async def test_an_unknown_service_is_unhealthy_and_named(
    served: tuple[HealthServicer, int],
) -> None:
    _, port = served

    code, _, err = await plugmesh_health(
        "gateway", "--address", f"127.0.0.1:{port}", "--service", "nope.v1.Nope", env={}
    )

    assert code == 1
    assert "NOT_FOUND" in err


async def test_nothing_listening_is_unhealthy_and_says_where_it_looked() -> None:
    address = f"127.0.0.1:{free_port()}"

    code, out, err = await plugmesh_health(
        "registry", "--timeout", "1", env={"PLUGMESH_REGISTRY_ADDRESS": address}
    )

    assert (code, out) == (1, "")
    assert f"plugmesh: {address}: UNAVAILABLE" in err


@pytest.mark.parametrize(
    ("env", "dialled"),
    [
        pytest.param({}, "127.0.0.1:50062", id="default"),
        pytest.param({"PLUGMESH_AUDIT_ADDRESS": "0.0.0.0:7000"}, "127.0.0.1:7000", id="wildcard"),
        pytest.param({"PLUGMESH_AUDIT_ADDRESS": "[::]:7000"}, "127.0.0.1:7000", id="v6-wildcard"),
        pytest.param({"PLUGMESH_AUDIT_ADDRESS": "10.0.0.5:7000"}, "10.0.0.5:7000", id="host"),
    ],
)
def test_the_address_checked_is_the_processs_own_variable(
    env: dict[str, str], dialled: str
) -> None:
    assert dial_address("audit", env) == dialled


def test_nats_and_unknown_names_are_refused() -> None:
    with pytest.raises(KeyError):
        dial_address("nats", {})
