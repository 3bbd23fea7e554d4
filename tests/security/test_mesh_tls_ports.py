"""Every internal port of a mesh that runs mutual TLS (the registry, the plugins, NATS),
probed for every method of the services it serves: a plaintext client, a client that
presents no certificate, and one whose certificate another CA signed never get past the
handshake; a mesh member's certificate gets each call as far as the service's own
authorization; a certificate naming another service cannot register in its stead."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import nats
import nats.errors
import pytest
import pytest_asyncio
from google.protobuf.descriptor import ServiceDescriptor
from grpc_health.v1 import health_pb2

from launcher.natsd import NatsServer
from meshkit.config import MeshConfig
from meshkit.errors import error_info
from meshkit.registration import secret_metadata
from meshkit.tls import MeshTls, dial, nats_options
from meshkit.tls_settings import MESH_SERVER_NAME
from plugmesh.audit.v1 import audit_pb2
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.registry.v1 import registry_pb2
from plugmesh.users.v1 import users_pb2
from registry.app import RegistryServer
from registry.config import RegistryConfig
from services.audit.app import build as build_audit
from services.audit.config import AuditConfig
from services.machineusers.app import build as build_machine_users
from services.machineusers.config import MachineUsersConfig
from services.users.app import build as build_users
from services.users.config import UsersConfig
from tests.security.probes import PROBES
from tests.support.calls import call_empty
from tests.support.certs import TestCa

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

SECRET = "security-tls-mesh-secret"
#: The services each internal port serves, besides health checking.
SERVED: dict[str, ServiceDescriptor] = {
    "registry": registry_pb2.DESCRIPTOR.services_by_name["RegistryService"],
    "users": users_pb2.DESCRIPTOR.services_by_name["UserService"],
    "machine-users": machineusers_pb2.DESCRIPTOR.services_by_name["MachineUserService"],
    "audit": audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
}
HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"]


@dataclass
class TlsMesh:
    """The mesh's ports, its CA, and a CA it does not trust."""

    ca: TestCa
    stranger: TestCa
    nats_url: str
    ports: dict[str, str]


def _env(data_dir: Path, nats_url: str, registry: str, member: MeshTls) -> dict[str, str]:
    return {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRY_ADDRESS": registry,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        "PLUGMESH_TLS_CERT_FILE": str(member.cert_file),
        "PLUGMESH_TLS_KEY_FILE": str(member.key_file),
        "PLUGMESH_TLS_CA_FILE": str(member.ca_file),
        **{f"PLUGMESH_{n.upper().replace('-', '_')}_ADDRESS": "127.0.0.1:0" for n in SERVED},
    }


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tls_mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TlsMesh]:
    """NATS, the registry, users, machine-users and audit, every one over mutual TLS
    with a certificate of its own."""
    data_dir = tmp_path_factory.mktemp("tls-mesh")
    ca = TestCa(data_dir / "ca")
    stranger = TestCa(data_dir / "stranger")
    async with NatsServer(data_dir / "jetstream", tls=ca.member("nats")) as nats_server:
        registry_tls = ca.member("registry")
        registry = RegistryServer(
            RegistryConfig(
                address="127.0.0.1:0",
                data_dir=data_dir,
                registration_secret=SECRET,
                shutdown_grace_seconds=0.2,
                mesh=dataclasses.replace(MeshConfig.from_env({}), tls=registry_tls),
            )
        )
        await registry.start()
        ports = {"registry": registry.address}
        plugins: list[Any] = []
        try:
            for name in ("users", "machine-users", "audit"):
                env = _env(data_dir, nats_server.url, registry.address, ca.member(name))
                plugin = _build(name, env)
                await plugin.server.start()
                plugins.append(plugin)
                ports[name] = plugin.server.address
            yield TlsMesh(ca, stranger, nats_server.url, ports)
        finally:
            for plugin in plugins:
                await plugin.server.stop(0)
            await registry.close()


def _build(name: str, env: dict[str, str]) -> Any:
    if name == "users":
        return build_users(UsersConfig.from_env(env))
    if name == "machine-users":
        return build_machine_users(MachineUsersConfig.from_env(env))
    return build_audit(AuditConfig.from_env(env))


def _client(kind: str, address: str, member: MeshTls, forged: MeshTls) -> grpc.aio.Channel:
    """A channel of a client without a mesh certificate."""
    if kind == "plaintext":
        return grpc.aio.insecure_channel(address)
    if kind == "no-certificate":
        return _no_client_certificate(member, address)
    return dial(address, forged)


async def _code(channel: grpc.aio.Channel, path: str, server_streaming: bool) -> str:
    """The status one call with an empty request ends in."""
    error = await call_empty(channel, path, server_streaming=server_streaming, timeout_seconds=3)
    return error.code().name if error is not None else "OK"


def _methods(service: str) -> list[tuple[str, bool]]:
    """(path, server streaming) of every method the port serves."""
    return [
        (f"/{descriptor.full_name}/{method.name}", method.server_streaming)
        for descriptor in (SERVED[service], HEALTH)
        for method in descriptor.methods
        if not method.client_streaming
    ]


def _no_client_certificate(tls: MeshTls, address: str) -> grpc.aio.Channel:
    credentials = grpc.ssl_channel_credentials(root_certificates=tls.ca_file.read_bytes())
    options = [("grpc.ssl_target_name_override", MESH_SERVER_NAME)]
    return grpc.aio.secure_channel(address, credentials, options=options)


@pytest.mark.parametrize("client", ["plaintext", "no-certificate", "another-ca"])
async def test_no_method_of_an_internal_port_answers_a_client_without_a_mesh_certificate(
    tls_mesh: TlsMesh, client: str
) -> None:
    member = tls_mesh.ca.member("prober")
    stranger = tls_mesh.stranger.member("users")
    # It trusts the mesh CA: only its own certificate can fail the handshake.
    forged = MeshTls(stranger.cert_file, stranger.key_file, member.ca_file)
    wrong: list[str] = []
    for service, address in tls_mesh.ports.items():
        for path, streaming in _methods(service):
            async with _client(client, address, member, forged) as channel:
                code = await _code(channel, path, streaming)
            PROBES["internal-tls"] += 1
            if code != "UNAVAILABLE":
                wrong.append(f"{service} {path}: {code}")
    assert wrong == []


async def test_a_mesh_certificate_gets_every_call_as_far_as_the_services_own_checks(
    tls_mesh: TlsMesh,
) -> None:
    member = tls_mesh.ca.member("prober")
    unavailable: list[str] = []
    for service, address in tls_mesh.ports.items():
        async with dial(address, member) as channel:
            for path, streaming in _methods(service):
                code = await _code(channel, path, streaming)
                PROBES["internal-tls"] += 1
                if code == "UNAVAILABLE":
                    unavailable.append(f"{service} {path}")
    assert unavailable == []


async def test_a_certificate_naming_another_service_cannot_register_in_its_stead(
    tls_mesh: TlsMesh,
) -> None:
    impostor = tls_mesh.ca.member("audit")
    request = registry_pb2.RegisterInstanceRequest(service="users", address="127.0.0.1:1")
    async with dial(tls_mesh.ports["registry"], impostor) as channel:
        register: Any = channel.unary_unary(
            "/plugmesh.registry.v1.RegistryService/RegisterInstance",
            request_serializer=registry_pb2.RegisterInstanceRequest.SerializeToString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await register(request, metadata=secret_metadata(SECRET), timeout=5)
    PROBES["internal-tls"] += 1

    info = error_info(refused.value)
    assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED
    assert info is not None
    assert info.reason == "IDENTITY_MISMATCH"


@pytest.mark.parametrize("client", ["plaintext", "another-ca"])
async def test_nats_refuses_a_client_without_a_mesh_certificate(
    tls_mesh: TlsMesh, client: str
) -> None:
    member = tls_mesh.ca.member("prober")
    stranger = tls_mesh.stranger.member("users")
    tls = (
        None
        if client == "plaintext"
        else MeshTls(stranger.cert_file, stranger.key_file, member.ca_file)
    )
    with pytest.raises((nats.errors.Error, OSError)):
        await _connect_and_close(tls_mesh.nats_url, tls)
    PROBES["nats"] += 1


async def _connect_and_close(url: str, tls: MeshTls | None) -> None:
    connection = await nats.connect(
        url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, **nats_options(tls)
    )
    await connection.close()
