"""Every process of a real mesh serves Prometheus metrics that move with real calls."""

from __future__ import annotations

import grpc
import pytest

from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.gateway.auth.mesh import Mesh
from tests.observability.scrape import Scrape, scrape
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

USERS = "plugmesh.users.v1.UserService"
HANDLED = "grpc_server_handled_total"
STARTED = "grpc_server_started_total"
LATENCY_COUNT = "grpc_server_handling_seconds_count"


def metrics_addresses(observed_mesh: Mesh) -> dict[str, str]:
    return {
        "registry": observed_mesh.registry.plugin_server.metrics_address,
        "gateway": observed_mesh.gateway.metrics_address,
        "users": observed_mesh.users.server.metrics_address,
        "audit": observed_mesh.audit.server.metrics_address,
        "machine-users": observed_mesh.machine_users.server.metrics_address,
    }


async def test_every_process_serves_metrics_on_its_own_address(observed_mesh: Mesh) -> None:
    addresses = metrics_addresses(observed_mesh)
    assert all(addresses.values()), addresses
    assert len(set(addresses.values())) == len(addresses), "one port per process"
    scrapes = {name: await scrape(address) for name, address in addresses.items()}

    # Each process counted the calls it served: the registry its registrations, the
    # machine-users plugin the gateway's token validations.
    registry = "plugmesh.registry.v1.RegistryService"
    registered = {"grpc_service": registry, "grpc_method": "RegisterInstance"}
    assert scrapes["registry"].value(HANDLED, grpc_type="unary", grpc_code="OK", **registered) >= 4
    # The gateway's watch of the registry: a response stream, started and still open.
    watching = {"grpc_service": registry, "grpc_method": "WatchServices"}
    assert scrapes["registry"].value(STARTED, grpc_type="server_stream", **watching) >= 1
    machine_users = "plugmesh.machineusers.v1.MachineUserService"
    created = scrapes["machine-users"].value(
        HANDLED, grpc_service=machine_users, grpc_method="CreateMachineUser", grpc_code="OK"
    )
    assert created >= 2
    # The event bus shares its process's registry: the plugin published what it wrote.
    published = scrapes["machine-users"].value(
        "plugmesh_events_published_total", type="machine_user.created"
    )
    assert published >= 2

    async def audited() -> Scrape | None:
        found = await scrape(addresses["audit"])
        consumed = found.value(
            "plugmesh_events_consumed_total", consumer="audit-all", type="machine_user.created"
        )
        return found if consumed >= 2 else None

    await eventually(audited, what="the audit plugin counting what it consumed")
    for name, found in scrapes.items():
        if name != "gateway":
            assert found.has("grpc_server_handling_seconds_bucket", le="+Inf"), name


async def test_calls_through_the_gateway_are_counted_by_method_and_code(
    observed_mesh: Mesh,
) -> None:
    users = observed_mesh.users.server.metrics_address
    admin = observed_mesh.bearer(observed_mesh.admin_token)
    before = await scrape(users)

    assert (await observed_mesh.http.get("/v1/users", headers=admin)).status_code == 200
    assert (await observed_mesh.http.get("/v1/users", headers=admin)).status_code == 200
    assert (
        await observed_mesh.http.get("/v1/users/no-such-user", headers=admin)
    ).status_code == 404

    after = await scrape(users)

    def moved(name: str, **labels: str) -> float:
        return after.value(name, **labels) - before.value(name, **labels)

    assert moved(STARTED, grpc_type="unary", grpc_service=USERS, grpc_method="ListUsers") == 2
    assert moved(HANDLED, grpc_service=USERS, grpc_method="ListUsers", grpc_code="OK") == 2
    assert moved(HANDLED, grpc_service=USERS, grpc_method="GetUser", grpc_code="NotFound") == 1
    assert moved(HANDLED, grpc_service=USERS, grpc_method="GetUser", grpc_code="OK") == 0
    assert moved(LATENCY_COUNT, grpc_service=USERS, grpc_method="ListUsers") == 2
    assert moved(LATENCY_COUNT, grpc_service=USERS, grpc_method="GetUser") == 1
    assert (
        moved("grpc_server_handling_seconds_sum", grpc_service=USERS, grpc_method="ListUsers") > 0
    )


async def test_the_gateway_serves_one_registry_on_both_metrics_endpoints(
    observed_mesh: Mesh,
) -> None:
    admin = observed_mesh.bearer(observed_mesh.admin_token)
    assert (await observed_mesh.http.get("/v1/users/nobody-here", headers=admin)).status_code == 404

    own = await scrape(observed_mesh.gateway.metrics_address)
    http = await scrape(observed_mesh.gateway.http_address)
    name = "plugmesh_gateway_http_requests_total"
    route = "GET /v1/users/{user_id}"
    assert own.value(name, route=route, code="404") >= 1
    # The same counters: HTTP's /metrics counts its own scrape just before answering it.
    assert http.value(name, route=route, code="404") == own.value(name, route=route, code="404")


async def test_the_gateway_ingress_counts_proxied_calls_and_unknown_methods(
    observed_mesh: Mesh,
) -> None:
    gateway = observed_mesh.gateway.metrics_address
    before = await scrape(gateway)
    stub = users_pb2_grpc.UserServiceStub(observed_mesh.channel)
    await stub.ListUsers(
        users_pb2.ListUsersRequest(),
        metadata=(("authorization", f"Bearer {observed_mesh.admin_token}"),),
    )
    made_up: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = observed_mesh.channel.unary_unary(
        "/made.up.Service/Nothing"
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await made_up(b"")
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED

    after = await scrape(gateway)
    ok = {"grpc_service": USERS, "grpc_method": "ListUsers", "grpc_code": "OK"}
    assert after.value(HANDLED, **ok) - before.value(HANDLED, **ok) == 1
    unknown = {"grpc_service": "unknown", "grpc_method": "unknown", "grpc_code": "Unimplemented"}
    # Nothing tells an unknown method's cardinality: its handler streams both ways.
    unknown["grpc_type"] = "bidi_stream"
    assert after.value(HANDLED, **unknown) - before.value(HANDLED, **unknown) == 1
    assert not after.has(HANDLED, grpc_service="made.up.Service"), "names a client made up"


async def test_the_gateway_counts_the_calls_each_plugin_instance_served(
    observed_mesh: Mesh,
) -> None:
    gateway = observed_mesh.gateway.metrics_address
    name = "plugmesh_gateway_upstream_calls_served_total"
    labels = {"service": "users", "address": observed_mesh.users.server.address}
    before = await scrape(gateway)

    for _ in range(3):
        response = await observed_mesh.http.get(
            "/v1/users", headers=observed_mesh.bearer(observed_mesh.admin_token)
        )
        assert response.status_code == 200

    after = await scrape(gateway)
    assert after.value(name, **labels) - before.value(name, **labels) == 3
