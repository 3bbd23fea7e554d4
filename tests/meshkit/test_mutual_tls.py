"""Mutual TLS between members of the mesh: a real registry and real plugin servers on
free ports, with certificates from a CA made for the test."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2

from meshkit.config import ConfigError, MeshConfig
from meshkit.discovery import Discovery
from meshkit.registration import Registrar, Registration, RegistrationRefused
from meshkit.server import PluginServer
from meshkit.tls import CHANNEL_OPTIONS, MeshTls, dial
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from registry.config import RegistryConfig
from tests.support.certs import TestCa
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(60)

_REGISTRY = "plugmesh.registry.v1.RegistryService"


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "mesh")


@pytest.fixture
async def registry(ca: TestCa, tmp_path: Path) -> AsyncIterator[RegistryServer]:
    tls = ca.member("registry")
    mesh = dataclasses.replace(MeshConfig.from_env({}), tls=tls, shutdown_grace_seconds=0.5)
    server = RegistryServer(
        RegistryConfig(
            address="127.0.0.1:0", data_dir=tmp_path, shutdown_grace_seconds=0.5, mesh=mesh
        )
    )
    await server.start()
    yield server
    await server.close()


def member_config(registry: RegistryServer, tls: MeshTls | None) -> MeshConfig:
    return dataclasses.replace(
        MeshConfig.from_env({"PLUGMESH_REGISTRY_ADDRESS": registry.address}),
        tls=tls,
        shutdown_grace_seconds=0.5,
    )


@pytest.fixture
async def plugin(ca: TestCa, registry: RegistryServer) -> AsyncIterator[PluginServer]:
    """A plugin with nothing but health, registered as ``echo``."""
    server = PluginServer(
        "echo", [], address="127.0.0.1:0", config=member_config(registry, ca.member("echo"))
    )
    await server.start()
    assert server.registrar is not None
    await asyncio.wait_for(server.registrar.registered.wait(), 10)
    yield server
    await server.stop(0)


async def health_of(address: str, tls: MeshTls | None) -> grpc.StatusCode | int:
    """The health status at ``address``, or the code the call failed with."""
    async with dial(address, tls) as channel:
        # The typed stubs of grpc_health lack the stub methods: the call is spelled out.
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            answer: health_pb2.HealthCheckResponse = await check(
                health_pb2.HealthCheckRequest(), timeout=3
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return answer.status


async def test_a_member_with_a_mesh_certificate_registers_and_is_watched_serving(
    registry: RegistryServer, plugin: PluginServer, ca: TestCa
) -> None:
    async with dial(registry.address, ca.member("reader")) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)

        async def serving() -> registry_pb2.Service | None:
            got = await stub.GetService(registry_pb2.GetServiceRequest(service="echo"))
            return got.service if got.service.health == registry_pb2.HEALTH_STATUS_SERVING else None

        service = await eventually(serving, what="echo SERVING, watched over mutual TLS")

    assert [i.address for i in service.instances] == [plugin.address]


async def test_a_client_without_a_certificate_cannot_call_the_registry_or_a_plugin(
    registry: RegistryServer, plugin: PluginServer
) -> None:
    assert await health_of(registry.address, None) == grpc.StatusCode.UNAVAILABLE
    assert await health_of(plugin.address, None) == grpc.StatusCode.UNAVAILABLE


async def test_a_certificate_signed_by_another_ca_is_refused(
    plugin: PluginServer, ca: TestCa, tmp_path: Path
) -> None:
    stranger = TestCa(tmp_path / "other").member("echo")
    # The stranger trusts the mesh CA, so only its own certificate can fail the handshake.
    forged = MeshTls(stranger.cert_file, stranger.key_file, ca.member("any").ca_file)

    assert await health_of(plugin.address, forged) == grpc.StatusCode.UNAVAILABLE
    assert (
        await health_of(plugin.address, ca.member("any")) == health_pb2.HealthCheckResponse.SERVING
    )


async def test_a_server_with_a_certificate_of_another_ca_is_not_trusted(
    ca: TestCa, tmp_path: Path
) -> None:
    server = PluginServer(
        "echo",
        [],
        address="127.0.0.1:0",
        config=dataclasses.replace(
            MeshConfig.from_env({}), tls=TestCa(tmp_path / "o").member("echo")
        ),
        register=False,
    )
    await server.start()
    try:
        assert await health_of(server.address, ca.member("gateway")) == grpc.StatusCode.UNAVAILABLE
    finally:
        await server.stop(0)


async def test_a_certificate_naming_another_service_cannot_register_it(
    registry: RegistryServer, ca: TestCa
) -> None:
    registrar = Registrar(
        Registration(
            "audit",
            "127.0.0.1:1",
            "1.0.0",
            (),
            registry_pb2.RegisterInstanceRequest().file_descriptor_set,
        ),
        registry_address=registry.address,
        secret=None,
        tls=ca.member("users"),
    )
    await registrar.start()
    try:
        await asyncio.wait_for(registrar.wait(), 10)
    finally:
        await registrar.close()

    refused = registrar.refused
    assert isinstance(refused, RegistrationRefused)
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "IDENTITY_MISMATCH",
    )


async def test_a_plugin_calls_another_by_name_over_mutual_tls(
    registry: RegistryServer, plugin: PluginServer, ca: TestCa
) -> None:
    # The registry registers its own RegistryService: the service called by name here.
    discovery = Discovery(registry.address, tls=ca.member("caller"))
    await discovery.start()
    try:
        await discovery.wait_ready(10)
        await eventually(
            lambda: _some(discovery.serving(_REGISTRY)), what="the registry served in discovery"
        )
        stub = registry_pb2_grpc.RegistryServiceStub(discovery.channel(_REGISTRY))
        listed = await stub.ListServices(registry_pb2.ListServicesRequest(), timeout=3)
    finally:
        await discovery.close()

    assert "echo" in [service.name for service in listed.services]


async def _some(addresses: tuple[str, ...]) -> tuple[str, ...] | None:
    return addresses or None


def presented_certificate(address: str, client: MeshTls) -> x509.Certificate:
    """The certificate the server at ``address`` presents in a fresh TLS handshake."""
    context = ssl.create_default_context(cafile=str(client.ca_file))
    context.load_cert_chain(str(client.cert_file), str(client.key_file))
    context.set_alpn_protocols(["h2"])
    host, _, port = address.rpartition(":")
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        server_name = dict(CHANNEL_OPTIONS)["grpc.ssl_target_name_override"]
        with context.wrap_socket(raw, server_hostname=server_name) as tls:
            der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_a_server_presents_its_renewed_certificate_without_a_restart(
    plugin: PluginServer, ca: TestCa
) -> None:
    client = ca.member("gateway")
    before = await asyncio.to_thread(presented_certificate, plugin.address, client)

    renewed = ca.member("echo")  # rewrites echo's files in place
    after = await asyncio.to_thread(presented_certificate, plugin.address, client)

    expected = x509.load_pem_x509_certificate(renewed.cert_file.read_bytes())
    assert after.serial_number == expected.serial_number != before.serial_number
    assert await health_of(plugin.address, client) == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize(
    "set_",
    [
        pytest.param(("PLUGMESH_TLS_CERT_FILE",), id="certificate-only"),
        pytest.param(("PLUGMESH_TLS_CERT_FILE", "PLUGMESH_TLS_KEY_FILE"), id="no-ca"),
    ],
)
def test_mutual_tls_needs_all_three_files(set_: tuple[str, ...], ca: TestCa) -> None:
    files = ca.member("users")
    paths = {
        "PLUGMESH_TLS_CERT_FILE": files.cert_file,
        "PLUGMESH_TLS_KEY_FILE": files.key_file,
        "PLUGMESH_TLS_CA_FILE": files.ca_file,
    }
    with pytest.raises(ConfigError, match="PLUGMESH_TLS_"):
        MeshConfig.from_env({name: str(paths[name]) for name in set_})


def test_a_missing_file_is_named(ca: TestCa) -> None:
    files = ca.member("users")
    env = {
        "PLUGMESH_TLS_CERT_FILE": str(files.cert_file),
        "PLUGMESH_TLS_KEY_FILE": str(files.key_file),
        "PLUGMESH_TLS_CA_FILE": str(files.ca_file) + ".gone",
    }
    with pytest.raises(ConfigError, match="PLUGMESH_TLS_CA_FILE"):
        MeshConfig.from_env(env)
