"""A plugin written in Node (tests/node/plugin.js) joins the mesh like any other.

It registers with the registry's secret and no descriptors (the registry reads its
schema, ``google.api.http`` rules included, over the plugin's reflection), renews its
lease, deregisters on SIGTERM, and is then served by the gateway over HTTP and through
the gRPC ingress with no gateway change. A real registry and gateway run in-process on
free ports; the plugin runs as a ``node`` subprocess.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from gateway.app import Gateway
from gateway.config import GatewayConfig
from meshkit.config import MeshConfig
from meshkit.errors import error_info
from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.app import RegistryServer
from tests.gateway import node
from tests.gateway.conftest import FAST
from tests.gateway.node import GREETER, NAME, NEEDS_NODE, NodePlugin, spawn
from tests.grpcurl import GRPCURL, grpcurl
from tests.support.registry import StartRegistry, member_channel
from tests.support.waiting import eventually

SECRET = "node-test-secret"


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


#: No NATS in this module: a port the OS handed out and took back, never a stray server.
NO_NATS = f"nats://127.0.0.1:{_unused_port()}"

pytestmark = [*NEEDS_NODE, pytest.mark.timeout(90)]

StartNode = Callable[..., Awaitable[NodePlugin]]


@pytest.fixture
async def registry(start_registry: StartRegistry) -> RegistryServer:
    """A registry that wants the registration secret."""
    return await start_registry(registration_secret=SECRET)


@pytest.fixture
async def gateway(registry: RegistryServer, tmp_path: Path) -> AsyncIterator[Gateway]:
    """The whole gateway on free ports, with the mesh's secret."""
    mesh = MeshConfig.from_env(
        {
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_REGISTRY_ADDRESS": registry.address,
            "PLUGMESH_REGISTRATION_SECRET": SECRET,
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        }
    )
    config = GatewayConfig(
        grpc_address="127.0.0.1:0",
        http_address="127.0.0.1:0",
        mcp_servers_address="127.0.0.1:0",
        default_deadline_seconds=5.0,
        mesh=mesh,
    )
    gateway = Gateway(config, registry_backoff=FAST)
    await gateway.start()
    assert await gateway.catalog.wait_ready(timeout_seconds=5)
    yield gateway
    await gateway.stop()


@pytest.fixture
async def start_node(registry: RegistryServer, tmp_path: Path) -> AsyncIterator[StartNode]:
    """Factory for Node plugins registered with ``registry``; stopped after the test."""
    plugins: list[NodePlugin] = []

    async def start(secret: str = SECRET) -> NodePlugin:
        log = tmp_path / f"node-{len(plugins)}.log"
        plugin = await node.start_node(registry.address, secret, log, nats_url=NO_NATS)
        plugins.append(plugin)
        return plugin

    yield start
    for plugin in plugins:
        await plugin.stop()


@pytest.fixture
async def registry_stub(
    registry: RegistryServer,
) -> AsyncIterator[registry_pb2_grpc.RegistryServiceAsyncStub]:
    async with member_channel(registry.address, SECRET) as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


async def registered_service(
    stub: registry_pb2_grpc.RegistryServiceAsyncStub,
) -> registry_pb2.Service | None:
    try:
        response = await stub.GetService(registry_pb2.GetServiceRequest(service=NAME))
    except grpc.aio.AioRpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return None
        raise
    return response.service


async def serving(stub: registry_pb2_grpc.RegistryServiceAsyncStub) -> registry_pb2.Service:
    """Wait until the registry reports the Node plugin SERVING."""

    async def check() -> registry_pb2.Service | None:
        service = await registered_service(stub)
        if service is not None and service.health == registry_pb2.HEALTH_STATUS_SERVING:
            return service
        return None

    return await eventually(check, timeout_seconds=15, what=f"{NAME} serving")


async def routed(client: httpx.AsyncClient, path: str) -> httpx.Response:
    """GET ``path`` until the gateway routes it to a plugin (its route table follows the
    registry's watch stream)."""

    async def check() -> httpx.Response | None:
        response = await client.get(path)
        return response if response.status_code == 200 else None

    return await eventually(check, timeout_seconds=15, what=f"GET {path} answered")


@pytest.fixture
async def http(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{gateway.http_address}", timeout=10) as client:
        yield client


async def test_registers_over_reflection_and_is_serving(
    registry_stub: registry_pb2_grpc.RegistryServiceAsyncStub, start_node: StartNode
) -> None:
    plugin = await start_node()

    service = await serving(registry_stub)

    assert list(service.grpc_services) == [GREETER]
    assert service.version == "1.3.0"  # from the service's plugin option
    assert list(service.produces) == ["greeter.greeted"]
    assert [(route.method, route.path) for route in service.routes] == [
        ("GET", "/v1/greetings/{name}"),
        ("POST", "/v1/greetings"),
        ("POST", "/v1/greetings:send"),
    ]
    [instance] = service.instances
    assert instance.instance_id == plugin.instance_id
    assert instance.address == plugin.address
    assert instance.health == registry_pb2.HEALTH_STATUS_SERVING
    assert dict(instance.metadata) == {"pid": str(plugin.pid), "language": "node"}
    schema = await registry_stub.GetServiceSchema(
        registry_pb2.GetServiceSchemaRequest(service=NAME),
        metadata=((SECRET_METADATA_KEY, SECRET),),
    )
    names = {file.name for file in schema.file_descriptor_set.file}
    assert "test/greeter/v1/greeter.proto" in names
    assert "google/api/annotations.proto" in names
    assert "plugmesh/options/v1/options.proto" in names


async def test_served_over_http_through_the_gateway(
    gateway: Gateway, http: httpx.AsyncClient, start_node: StartNode
) -> None:
    plugin = await start_node()

    got = await routed(http, "/v1/greetings/World?excitement=2")
    method = gateway.catalog.method(f"{GREETER}.SayHello")
    posted = await http.post("/v1/greetings", json={"name": "Ada Lovelace"})
    escaped = await http.get("/v1/greetings/a%2Fb%20c")
    invalid = await http.get("/v1/greetings/World?excitement=11")
    unknown = await http.get("/v1/greetings/World?loudness=3")

    served_by = f"node {plugin.pid}"
    assert method is not None
    assert method.access == options_pb2.ACCESS_PUBLIC
    assert method.safe
    assert got.json() == {"message": "Hello, World!!", "servedBy": served_by}
    assert posted.status_code == 200, posted.text
    assert posted.json() == {"message": "Hello, Ada Lovelace", "servedBy": served_by}
    assert escaped.json()["message"] == "Hello, a/b c"
    assert invalid.status_code == 400
    assert invalid.json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert invalid.json()["message"] == "excitement must be between 0 and 10"
    assert invalid.json()["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "INVALID_FIELD",
            "domain": f"{NAME}.plugmesh",
            "metadata": {"field": "excitement"},
        }
    ]
    assert unknown.status_code == 400
    assert "loudness" in unknown.json()["message"]


async def test_listed_described_and_called_with_grpcurl_through_the_ingress(
    gateway: Gateway,
    registry_stub: registry_pb2_grpc.RegistryServiceAsyncStub,
    start_node: StartNode,
) -> None:
    if not GRPCURL.exists():
        pytest.skip("grpcurl is installed by `make`")
    plugin = await start_node()
    await serving(registry_stub)

    async def listed() -> str | None:
        result = await grpcurl(gateway.grpc_address, "list")
        return result.stdout if GREETER in result.stdout.split() else None

    await eventually(listed, timeout_seconds=15, what=f"{GREETER} listed by the gateway")
    described = await grpcurl(gateway.grpc_address, "describe", f"{GREETER}.SayHello")
    message = await grpcurl(gateway.grpc_address, "describe", "test.greeter.v1.SayHelloRequest")
    called = await grpcurl(
        "-d", '{"name": "grpcurl", "excitement": 1}', gateway.grpc_address, f"{GREETER}/SayHello"
    )
    failed = await grpcurl("-d", "{}", gateway.grpc_address, f"{GREETER}/SayHello")

    assert described.returncode == 0, described.stderr
    assert "rpc SayHello ( .test.greeter.v1.SayHelloRequest )" in described.stdout
    assert 'option (.google.api.http) = { get:"/v1/greetings/{name}"' in described.stdout
    assert message.returncode == 0, message.stderr
    assert "int32 excitement = 2;" in message.stdout
    # The comments the plugin's descriptors carry, through the registry and the gateway.
    assert "// Greets one person." in described.stdout
    assert "// How many exclamation marks to add." in message.stdout
    assert called.returncode == 0, called.stderr
    assert called.json() == {"message": "Hello, grpcurl!", "servedBy": f"node {plugin.pid}"}
    assert failed.returncode != 0
    assert "Code: InvalidArgument" in failed.stderr
    assert '"reason":"INVALID_FIELD"' in failed.stderr


async def test_a_greeting_whose_event_cannot_be_published_is_not_answered_ok(
    start_node: StartNode,
) -> None:
    plugin = await start_node()
    key = signing_key(SECRET)
    assert key is not None
    identity = to_metadata(Identity(PrincipalKind.SERVICE, "tests"), key)
    request = b"\x0a\x06nobody"  # SendGreetingRequest{name: "nobody"}: no stubs here

    async with grpc.aio.insecure_channel(plugin.address) as channel:
        call: Any = channel.unary_unary(f"/{GREETER}/SendGreeting")  # raw bytes both ways
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await call(request, metadata=identity, timeout=15)

    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(failed.value)
    assert info is not None
    assert (info.reason, info.domain) == ("EVENT_NOT_PUBLISHED", f"{NAME}.plugmesh")
    assert "publishing failed" in plugin.stderr()


async def test_killed_plugin_is_marked_unhealthy_and_gets_no_traffic(
    http: httpx.AsyncClient,
    registry_stub: registry_pb2_grpc.RegistryServiceAsyncStub,
    start_node: StartNode,
) -> None:
    plugin = await start_node()
    await routed(http, "/v1/greetings/before")

    plugin.process.kill()
    await plugin.exit_code()

    async def unhealthy() -> registry_pb2.Instance | None:
        service = await registered_service(registry_stub)
        if service is None or not service.instances:
            return None
        [instance] = service.instances
        return instance if instance.health != registry_pb2.HEALTH_STATUS_SERVING else None

    instance = await eventually(unhealthy, timeout_seconds=15, what=f"{NAME} unhealthy")
    assert instance.health == registry_pb2.HEALTH_STATUS_UNREACHABLE

    async def refused() -> httpx.Response | None:
        response = await http.get("/v1/greetings/after")
        return response if response.status_code == 503 else None

    response = await eventually(refused, timeout_seconds=15, what="503 without a healthy instance")
    assert response.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]


async def test_sigterm_deregisters_and_the_routes_go(
    http: httpx.AsyncClient,
    registry_stub: registry_pb2_grpc.RegistryServiceAsyncStub,
    start_node: StartNode,
) -> None:
    plugin = await start_node()
    await routed(http, "/v1/greetings/before")

    plugin.process.send_signal(signal.SIGTERM)

    assert await plugin.exit_code() == 0
    assert '"message":"deregistered"' in plugin.stderr()
    assert await registered_service(registry_stub) is None

    async def gone() -> httpx.Response | None:
        response = await http.get("/v1/greetings/after")
        return response if response.status_code == 404 else None

    await eventually(gone, timeout_seconds=15, what="the route gone")


async def test_a_wrong_secret_is_refused_for_good(start_node: StartNode) -> None:
    with pytest.raises(AssertionError, match="exited with 2") as refused:
        await start_node(secret="wrong")

    assert "registration refused" in str(refused.value)


async def test_renews_its_lease(
    start_registry: StartRegistry,
    tmp_path: Path,
) -> None:
    # A registry of its own with a 1.5 s lease, renewed every 0.5 s.
    (tmp_path / "short").mkdir()
    short = await start_registry(
        registration_secret=SECRET, lease_seconds=1.5, data_dir=tmp_path / "short"
    )
    process, line = await spawn(short.address, SECRET, tmp_path / "renew.log")
    try:
        assert line, (tmp_path / "renew.log").read_text()
        instance_id = json.loads(line)["instance_id"]
        async with member_channel(short.address, SECRET) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            first = await serving(stub)
            first_expiry = first.instances[0].lease_expire_time.ToDatetime()

            async def renewed() -> registry_pb2.Service | None:
                service = await registered_service(stub)
                if service is None or not service.instances:
                    return None
                expiry = service.instances[0].lease_expire_time.ToDatetime()
                return service if expiry > first_expiry else None

            service = await eventually(renewed, timeout_seconds=10, what="a renewed lease")
            assert service.instances[0].instance_id == instance_id
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            await process.wait()
