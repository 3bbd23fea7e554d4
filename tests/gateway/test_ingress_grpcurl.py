"""The real grpcurl binary lists, describes and calls plugins through the gateway's gRPC port."""

from __future__ import annotations

import pytest

from gateway.app import Gateway
from registry.app import RegistryServer
from tests.gateway.conftest import StartEcho, serving_instances
from tests.gateway.echo import SERVICE, EchoPlugin
from tests.gateway.test_core_catalog import register
from tests.grpcurl import GRPCURL, grpcurl
from tests.support.registry import Contract, Method, StartPlugin, contract_file

pytestmark = [
    pytest.mark.skipif(not GRPCURL.exists(), reason="grpcurl is installed by `make`"),
    pytest.mark.timeout(90),
]

# A plugin the gateway knows only through the registry (served by reflection, no Python
# stubs): any language's plugin looks like this to the gateway.
GADGETS = Contract(
    package="test.gadgets.v1",
    service="GadgetService",
    methods=[Method("GetGadget", [("GET", "/v1/gadgets/{id}")])],
)


@pytest.fixture
async def echo(gateway: Gateway, start_echo: StartEcho) -> EchoPlugin:
    plugin = await start_echo()
    await serving_instances(gateway.catalog, "echo", 1)
    return plugin


async def test_list_shows_every_plugin_and_the_gateways_own_services(
    gateway: Gateway, registry: RegistryServer, echo: EchoPlugin, start_plugin: StartPlugin
) -> None:
    gadgets = await start_plugin([contract_file(GADGETS)], [GADGETS.full_name])
    await register(registry.address, "gadgets", gadgets)
    await serving_instances(gateway.catalog, "gadgets", 1)

    listed = await grpcurl(gateway.grpc_address, "list")

    assert listed.returncode == 0, listed.stderr
    assert set(listed.stdout.split()) == {
        SERVICE,
        GADGETS.full_name,
        "plugmesh.registry.v1.RegistryService",
        "plugmesh.mcp.v1.McpServerService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }


async def test_describe_a_plugin_service_and_a_method_through_the_gateway(
    gateway: Gateway, echo: EchoPlugin
) -> None:
    service = await grpcurl(gateway.grpc_address, "describe", SERVICE)
    method = await grpcurl(gateway.grpc_address, "describe", f"{SERVICE}.Stream")
    message = await grpcurl(gateway.grpc_address, "describe", "test.echo.v1.EchoRequest")

    assert service.returncode == 0, service.stderr
    assert "rpc Chat ( stream .test.echo.v1.EchoRequest ) returns ( stream" in service.stdout
    assert method.returncode == 0, method.stderr
    assert "returns ( stream .test.echo.v1.EchoResponse )" in method.stdout
    assert message.returncode == 0, message.stderr
    assert "int32 delay_ms = 3;" in message.stdout


async def test_grpcurl_calls_a_plugin_through_the_gateway(
    gateway: Gateway, echo: EchoPlugin
) -> None:
    unary = await grpcurl("-d", '{"message": "hello"}', gateway.grpc_address, f"{SERVICE}/Echo")
    stream = await grpcurl(
        "-d", '{"message": "s", "count": 2}', gateway.grpc_address, f"{SERVICE}/Stream"
    )

    assert unary.returncode == 0, unary.stderr
    assert unary.json()["message"] == "hello"
    assert unary.json()["servedBy"] == echo.address
    assert stream.returncode == 0, stream.stderr
    assert stream.stdout.count('"message": "s"') == 2


async def test_grpcurl_sees_a_plugin_error_with_its_details(
    gateway: Gateway, echo: EchoPlugin
) -> None:
    failed = await grpcurl("-d", '{"fail": "NOT_FOUND"}', gateway.grpc_address, f"{SERVICE}/Echo")

    assert failed.returncode != 0
    assert "Code: NotFound" in failed.stderr
    assert "ECHO_FAILED" in failed.stderr


async def test_grpcurl_checks_health_through_the_gateway(
    gateway: Gateway, echo: EchoPlugin
) -> None:
    checked = await grpcurl(
        "-d", f'{{"service": "{SERVICE}"}}', gateway.grpc_address, "grpc.health.v1.Health/Check"
    )

    assert checked.returncode == 0, checked.stderr
    assert checked.json() == {"status": "SERVING"}
