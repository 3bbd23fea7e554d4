"""The gateway inside a mesh that runs mutual TLS, and its front door with and without a
certificate: a real registry, echo plugin and gateway on free ports."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import pytest
from cryptography import x509

from gateway.app import Gateway
from gateway.config import GatewayConfig
from gateway.front_door import FrontDoorTls
from gateway.http.asgi import Receive, Scope, Send
from gateway.http.server import HttpServer
from meshkit.config import ConfigError, MeshConfig
from meshkit.registration import Backoff
from meshkit.tls import dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from registry.config import RegistryConfig
from tests.gateway.conftest import serving_instances
from tests.gateway.echo import EchoPlugin
from tests.support.certs import TestCa
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

FAST = Backoff(initial_seconds=0.05, maximum_seconds=0.2)


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "mesh")


@pytest.fixture
def public_ca(tmp_path: Path) -> TestCa:
    """Another CA: the one that signs the front door's certificate (for ``localhost``)."""
    return TestCa(tmp_path / "public")


@pytest.fixture
async def registry(ca: TestCa, tmp_path: Path) -> AsyncIterator[RegistryServer]:
    mesh = dataclasses.replace(MeshConfig.from_env({}), tls=ca.member("registry"))
    server = RegistryServer(
        RegistryConfig(
            address="127.0.0.1:0", data_dir=tmp_path, shutdown_grace_seconds=0.5, mesh=mesh
        )
    )
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def echo(ca: TestCa, registry: RegistryServer) -> AsyncIterator[EchoPlugin]:
    plugin = EchoPlugin(registry.address, tls=ca.member("echo"))
    await plugin.start()
    yield plugin
    await plugin.stop()


async def start_gateway(
    registry: RegistryServer, ca: TestCa, tmp_path: Path, front_door: FrontDoorTls
) -> Gateway:
    mesh = MeshConfig.from_env(
        {
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_REGISTRY_ADDRESS": registry.address,
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        }
    )
    tls = ca.member("gateway", extra_services=("mcp-servers",))
    config = GatewayConfig(
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        mcp_servers_address="127.0.0.1:0",
        default_deadline_seconds=5.0,
        mesh=dataclasses.replace(mesh, tls=tls),
        front_door=front_door,
    )
    gateway = Gateway(config, registry_backoff=FAST)
    await gateway.start()
    assert await gateway.catalog.wait_ready(timeout_seconds=10)
    return gateway


@pytest.fixture
async def gateway(registry: RegistryServer, ca: TestCa, tmp_path: Path) -> AsyncIterator[Gateway]:
    gateway = await start_gateway(registry, ca, tmp_path, FrontDoorTls())
    yield gateway
    await gateway.stop()


async def test_the_gateway_calls_a_plugin_over_mutual_tls(
    gateway: Gateway, echo: EchoPlugin
) -> None:
    await serving_instances(gateway.catalog, "echo", 1)

    # The front door on loopback stays plaintext; the hop behind it is mutual TLS.
    async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}") as client:
        reply = await client.get("/v1/echo/hello")

    assert reply.status_code == 200, reply.text
    assert reply.json()["servedBy"] == echo.address


async def test_the_gateway_registers_its_mesh_port_and_is_watched_serving(
    gateway: Gateway, registry: RegistryServer, ca: TestCa
) -> None:
    async with dial(registry.address, ca.member("reader")) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def serving() -> registry_pb2.Service | None:
            try:
                got = await stub.GetService(registry_pb2.GetServiceRequest(service="gateway"))
            except grpc.aio.AioRpcError:
                return None  # not registered yet
            return got.service if got.service.health == registry_pb2.HEALTH_STATUS_SERVING else None

        service = await eventually(serving, timeout_seconds=10, what="the gateway SERVING")

    [instance] = service.instances
    assert instance.address == gateway.mcp_servers.server.address
    assert instance.metadata["grpc_address"] == gateway.grpc_address


async def test_the_front_door_serves_tls_on_both_ports_with_a_certificate(
    registry: RegistryServer, ca: TestCa, public_ca: TestCa, tmp_path: Path
) -> None:
    served = public_ca.member("localhost")
    gateway = await start_gateway(
        registry, ca, tmp_path, FrontDoorTls(served.cert_file, served.key_file)
    )
    try:
        assert gateway.http is not None
        trust = ssl.create_default_context(cafile=str(served.ca_file))
        async with httpx.AsyncClient(verify=trust) as client:
            secure = await client.get(f"https://localhost:{gateway.http.port}/healthz")
        async with httpx.AsyncClient() as client:
            with pytest.raises(httpx.HTTPError):
                await client.get(f"http://{gateway.http_address}/healthz")

        credentials = grpc.ssl_channel_credentials(served.ca_file.read_bytes())
        port = gateway.grpc_address.rpartition(":")[2]
        async with grpc.aio.secure_channel(f"localhost:{port}", credentials) as channel:
            await _check_health(channel)
        async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _check_health(channel)
    finally:
        await gateway.stop()

    assert secure.status_code == 200
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


async def _check_health(channel: grpc.aio.Channel) -> None:
    check: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        "/grpc.health.v1.Health/Check"
    )
    await check(b"", timeout=5)


@pytest.mark.parametrize(
    ("env", "refused"),
    [
        pytest.param({}, None, id="loopback-plaintext"),
        pytest.param(
            {"PLUGMESH_GATEWAY_HTTP_ADDRESS": "0.0.0.0:8080"},
            "PLUGMESH_GATEWAY_HTTP_ADDRESS",
            id="wildcard-http-plaintext",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_GRPC_ADDRESS": "10.0.0.5:50051"},
            "PLUGMESH_GATEWAY_GRPC_ADDRESS",
            id="lan-grpc-plaintext",
        ),
        pytest.param(
            {
                "PLUGMESH_GATEWAY_HTTP_ADDRESS": "0.0.0.0:8080",
                "PLUGMESH_GATEWAY_PLAINTEXT": "allow",
            },
            None,
            id="wildcard-plaintext-allowed",
        ),
        pytest.param(
            {"PLUGMESH_GATEWAY_PLAINTEXT": "sometimes"},
            "PLUGMESH_GATEWAY_PLAINTEXT",
            id="bad-setting",
        ),
    ],
)
def test_plaintext_is_refused_off_loopback_unless_allowed(
    env: dict[str, str], refused: str | None
) -> None:
    if refused is None:
        GatewayConfig.from_env(env)
        return
    with pytest.raises(ConfigError, match=refused):
        GatewayConfig.from_env(env)


def test_a_certificate_allows_any_address(public_ca: TestCa) -> None:
    served = public_ca.member("gateway.example")
    env = {
        "PLUGMESH_GATEWAY_HTTP_ADDRESS": "0.0.0.0:8080",
        "PLUGMESH_GATEWAY_GRPC_ADDRESS": "0.0.0.0:50051",
        "PLUGMESH_GATEWAY_TLS_CERT_FILE": str(served.cert_file),
        "PLUGMESH_GATEWAY_TLS_KEY_FILE": str(served.key_file),
    }
    assert GatewayConfig.from_env(env).front_door.enabled


async def test_the_http_front_door_serves_its_renewed_certificate_without_a_restart(
    public_ca: TestCa,
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    served = public_ca.member("localhost")
    server = HttpServer(
        app,
        "127.0.0.1:0",
        tls=FrontDoorTls(served.cert_file, served.key_file),
        certificate_check_seconds=0.05,
    )
    await server.start()
    try:
        address = f"localhost:{server.port}"
        first = await asyncio.to_thread(_served_serial, address, served.ca_file)
        public_ca.member("localhost")  # rewrites the files in place

        async def renewed() -> int | None:
            serial = await asyncio.to_thread(_served_serial, address, served.ca_file)
            return serial if serial != first else None

        second = await eventually(renewed, what="the renewed certificate served")
    finally:
        await server.stop()

    on_disk = x509.load_pem_x509_certificate(served.cert_file.read_bytes())
    assert second == on_disk.serial_number


def _served_serial(address: str, ca_file: Path) -> int:
    host, _, port = address.rpartition(":")
    context = ssl.create_default_context(cafile=str(ca_file))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number
