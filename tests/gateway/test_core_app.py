"""The gateway process: both ports wired to one catalog, registration, ``python -m gateway``."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import grpc
import httpx
import pytest

from gateway.__main__ import main
from gateway.app import Gateway
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.gateway.conftest import StartEcho, serving_instances
from tests.gateway.echo import EchoPlugin
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)


async def gateway_in_registry(registry_address: str) -> registry_pb2.Service | None:
    async with grpc.aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        try:
            got = await stub.GetService(registry_pb2.GetServiceRequest(service="gateway"))
        except grpc.aio.AioRpcError:
            return None
    serving = got.service.health == registry_pb2.HEALTH_STATUS_SERVING
    return got.service if serving else None


async def test_http_and_grpc_serve_the_same_plugins(
    gateway: Gateway, start_echo: StartEcho
) -> None:
    echo: EchoPlugin = await start_echo()
    await serving_instances(gateway.catalog, "echo", 1)

    async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}") as client:
        ready = await client.get("/readyz")
        reply = await client.get("/v1/echo/hello")

    assert ready.status_code == 200
    assert reply.status_code == 200, reply.text
    assert reply.json()["message"] == "hello"
    assert reply.json()["servedBy"] == echo.address


async def test_the_registration_names_the_http_address(
    gateway: Gateway, registry: RegistryServer
) -> None:
    service = await eventually(
        lambda: gateway_in_registry(registry.address), what="the gateway serving"
    )

    [instance] = service.instances
    assert instance.metadata["http_address"] == gateway.http_address
    assert instance.address == gateway.grpc_address


async def test_python_m_gateway_serves_registers_and_stops_on_sigterm(
    registry: RegistryServer,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    env |= {
        "PLUGMESH_REGISTRY_ADDRESS": registry.address,
        "PLUGMESH_GATEWAY_GRPC_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_GATEWAY_HTTP_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        service = await eventually(
            lambda: gateway_in_registry(registry.address),
            timeout_seconds=20,
            what="the gateway process registering and serving",
        )
        [instance] = service.instances
        async with httpx.AsyncClient() as client:
            healthz = await client.get(f"http://{instance.metadata['http_address']}/healthz")
        assert healthz.status_code == 200

        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert code == 0
    gone = await eventually(
        lambda: _deregistered(registry.address), what="the gateway deregistering"
    )
    assert gone


async def _deregistered(registry_address: str) -> bool | None:
    async with grpc.aio.insecure_channel(registry_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        listed = await stub.ListServices(registry_pb2.ListServicesRequest())
    return True if "gateway" not in {s.name for s in listed.services} else None


def test_a_bad_setting_exits_with_a_message(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES", "lots")

    code = main()

    assert code == 2
    assert "PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES" in capsys.readouterr().err
