"""A plugin written in Node, not with the Python toolkit, in the whole mesh.

It registers, is health-checked and served over HTTP and through the gRPC ingress; its
SendGreeting publishes a ``plugmesh.events.v1`` envelope to JetStream with the npm
``nats`` client, and the audit plugin records it. When it reports NOT_SERVING the gateway
stops sending it traffic. Everything is real: nats-server, registry, machine-users,
users and audit plugins, gateway, and ``node plugin.js`` (tests/node).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
from typing import Any

import grpc
import httpx
import nats
import pytest
from google.protobuf import json_format, message, message_factory
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from meshkit.errors import error_info
from meshkit.events import parse_event
from meshkit.events.relay import MSG_ID
from meshkit.events.streams import EVENTS_STREAM
from plugmesh.events.v1 import event_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.node import GREETER, NAME, NEEDS_NODE, NodePlugin
from tests.support.registry import member_channel
from tests.support.waiting import eventually

pytestmark = [*NEEDS_NODE, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

EVENT_TYPE = "greeter.greeted"
SUBJECT = f"plugmesh.events.{EVENT_TYPE}"
PAYLOAD = "test.greeter.v1.Greeted"


def new_traceparent() -> tuple[str, str]:
    """A sampled W3C traceparent and its trace id."""
    trace_id = os.urandom(16).hex()
    return f"00-{trace_id}-{os.urandom(8).hex()}-01", trace_id


def message_class(auth_mesh: Mesh, method: str, *, output: bool = False) -> type[message.Message]:
    """The request (or response) class of a greeter method, from the contract the gateway
    read over the Node plugin's reflection: no generated code."""
    found = auth_mesh.gateway.catalog.method(f"{GREETER}.{method}")
    assert found is not None, f"{GREETER}.{method} is not in the gateway's catalog"
    desc = found.descriptor.output_type if output else found.descriptor.input_type
    return message_factory.GetMessageClass(desc)


def payload_class(auth_mesh: Mesh) -> type[message.Message]:
    """The Greeted payload class, from the same contract."""
    found = auth_mesh.gateway.catalog.method(f"{GREETER}.SendGreeting")
    assert found is not None
    pool = found.descriptor.containing_service.file.pool
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(PAYLOAD))


async def send_greeting(
    auth_mesh: Mesh,
    target: str | grpc.aio.Channel,
    name: str,
    metadata: tuple[tuple[str, str], ...],
) -> Any:
    """Call SendGreeting over gRPC, at ``target`` (an address or a channel)."""
    request, response = (
        message_class(auth_mesh, "SendGreeting"),
        message_class(auth_mesh, "SendGreeting", output=True),
    )
    channel = grpc.aio.insecure_channel(target) if isinstance(target, str) else target
    try:
        call = channel.unary_unary(
            f"/{GREETER}/SendGreeting",
            request_serializer=request.SerializeToString,
            response_deserializer=response.FromString,
        )
        return await call(_named(request, name), metadata=metadata, timeout=10)
    finally:
        if isinstance(target, str):
            await channel.close()


async def last_published(auth_mesh: Mesh) -> RawStreamMsg | None:
    """The last greeter.greeted event in the event stream, with its headers."""
    connection = await nats.connect(auth_mesh.nats.url, connect_timeout=5, allow_reconnect=False)
    try:
        return await connection.jsm().get_last_msg(EVENTS_STREAM, SUBJECT)
    except NotFoundError:
        return None
    finally:
        await connection.close()


async def audited(auth_mesh: Mesh, entry_id: str) -> dict[str, Any]:
    """The audit entry with ``entry_id``, read through the gateway as the admin, once the
    audit plugin has recorded it."""

    async def entry() -> dict[str, Any] | None:
        response = await auth_mesh.http.get(
            f"/v1/audit/entries/{entry_id}", headers=auth_mesh.bearer(auth_mesh.admin_token)
        )
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()["entry"]
        return found

    return await eventually(entry, timeout_seconds=20, what=f"audit entry {entry_id}")


async def registered(auth_mesh: Mesh) -> registry_pb2.Service:
    """The Node plugin as the registry has it, asked as a mesh member."""
    async with member_channel(auth_mesh.registry.address, SECRET) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        response = await stub.GetService(registry_pb2.GetServiceRequest(service=NAME), timeout=5)
    return response.service


async def test_the_registry_has_it_serving_and_producing_its_event(
    auth_mesh: Mesh, node_plugin: NodePlugin
) -> None:
    service = await registered(auth_mesh)
    async with member_channel(auth_mesh.registry.address, SECRET) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        who = await stub.ListEventServices(
            registry_pb2.ListEventServicesRequest(event_type=EVENT_TYPE), timeout=5
        )

    assert service.health == registry_pb2.HEALTH_STATUS_SERVING
    [instance] = service.instances
    assert instance.address == node_plugin.address
    assert dict(instance.metadata)["language"] == "node"
    assert list(service.produces) == [EVENT_TYPE]
    assert list(who.producers) == [NAME]
    assert "audit" in who.consumers  # it consumes ">"


async def test_a_greeting_sent_over_http_is_published_and_recorded_by_the_audit_log(
    auth_mesh: Mesh, node_plugin: NodePlugin
) -> None:
    traceparent, trace_id = new_traceparent()

    response = await auth_mesh.http.post(
        "/v1/greetings:send",
        json={"name": "Ada"},
        headers={**auth_mesh.bearer(auth_mesh.user_token), "traceparent": traceparent},
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Hello, Ada"
    assert body["servedBy"] == f"node {node_plugin.pid}"
    event_id = body["eventId"]
    published = await last_published(auth_mesh)
    assert published is not None
    assert published.headers == {MSG_ID: event_id, "traceparent": traceparent}
    envelope = parse_event(published.data or b"")
    assert (envelope.id, envelope.type, envelope.source, envelope.subject) == (
        event_id,
        EVENT_TYPE,
        f"/plugmesh/{NAME}",
        "greetings/Ada",
    )
    assert (envelope.specversion, envelope.datacontenttype) == ("1.0", "application/protobuf")
    age = dt.datetime.now(dt.UTC) - envelope.time.ToDatetime(tzinfo=dt.UTC)
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=1)
    assert envelope.data.type_url == f"type.googleapis.com/{PAYLOAD}"
    payload = payload_class(auth_mesh).FromString(envelope.data.value)
    assert (payload.name, payload.message) == ("Ada", "Hello, Ada")  # type: ignore[attr-defined]
    actor: event_pb2.Actor = payload.actor  # type: ignore[attr-defined]
    assert (actor.type, actor.id) == (event_pb2.ACTOR_TYPE_MACHINE, auth_mesh.user_machine_id)

    entry = await audited(auth_mesh, event_id)
    assert entry["action"] == EVENT_TYPE
    assert entry["source"] == f"/plugmesh/{NAME}"
    assert entry["resource"] == "greetings/Ada"
    assert entry["traceId"] == trace_id
    assert entry["outcome"] == "OUTCOME_SUCCESS"
    # Decoded with the plugin's contract from the registry: who acted, and the fields.
    assert entry["actor"]["type"] == "ACTOR_TYPE_MACHINE"
    assert entry["actor"]["id"] == auth_mesh.user_machine_id
    assert entry["details"]["@type"] == f"type.googleapis.com/{PAYLOAD}"
    assert (entry["details"]["name"], entry["details"]["message"]) == ("Ada", "Hello, Ada")


async def test_a_greeting_sent_through_the_grpc_ingress_is_recorded_too(
    auth_mesh: Mesh, node_plugin: NodePlugin
) -> None:
    traceparent, trace_id = new_traceparent()

    reply = await send_greeting(
        auth_mesh,
        auth_mesh.channel,
        "Grace",
        (("authorization", f"Bearer {auth_mesh.admin_token}"), ("traceparent", traceparent)),
    )

    assert reply.message == "Hello, Grace"
    entry = await audited(auth_mesh, reply.event_id)
    assert (entry["action"], entry["resource"], entry["traceId"]) == (
        EVENT_TYPE,
        "greetings/Grace",
        trace_id,
    )
    published = await last_published(auth_mesh)
    assert published is not None
    payload = payload_class(auth_mesh).FromString(parse_event(published.data or b"").data.value)
    assert payload.actor.type == event_pb2.ACTOR_TYPE_MACHINE  # type: ignore[attr-defined]


async def test_a_mesh_service_calls_it_directly_with_a_signed_identity(
    auth_mesh: Mesh, node_plugin: NodePlugin
) -> None:
    reply = await send_greeting(auth_mesh, node_plugin.address, "Linus", auth_mesh.mesh_metadata)

    entry = await audited(auth_mesh, reply.event_id)
    published = await last_published(auth_mesh)
    assert published is not None
    envelope = parse_event(published.data or b"")
    assert envelope.id == reply.event_id
    payload = payload_class(auth_mesh).FromString(envelope.data.value)
    actor: event_pb2.Actor = payload.actor  # type: ignore[attr-defined]
    assert (actor.type, actor.id) == (event_pb2.ACTOR_TYPE_SERVICE, "auth-tests")
    assert (entry["actor"]["type"], entry["actor"]["id"]) == ("ACTOR_TYPE_SERVICE", "auth-tests")
    assert len(entry["traceId"]) == 32  # a trace of its own: the caller sent none


@pytest.mark.parametrize(
    "how",
    ["http-without-token", "ingress-without-token", "direct-with-bearer", "direct-forged"],
)
async def test_an_unauthenticated_greeting_is_refused_and_publishes_nothing(
    auth_mesh: Mesh, node_plugin: NodePlugin, how: str
) -> None:
    before = await last_published(auth_mesh)
    bearer = (("authorization", f"Bearer {auth_mesh.admin_token}"),)
    forged = tuple(
        (key, value.replace('"admin":false', '"admin":true'))
        for key, value in auth_mesh.mesh_metadata
    )

    if how == "http-without-token":
        response = await auth_mesh.http.post("/v1/greetings:send", json={"name": "Eve"})
        assert response.status_code == 401
        assert response.json()["code"] == grpc.StatusCode.UNAUTHENTICATED.value[0]
    else:
        targets: dict[str, tuple[str | grpc.aio.Channel, tuple[tuple[str, str], ...]]] = {
            "ingress-without-token": (auth_mesh.channel, ()),
            # A plugin does not read tokens: without a signed identity the caller is anonymous.
            "direct-with-bearer": (node_plugin.address, bearer),
            "direct-forged": (node_plugin.address, forged),
        }
        target, metadata = targets[how]
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await send_greeting(auth_mesh, target, "Eve", metadata)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        info = error_info(refused.value)
        assert info is not None
        # Refused by the gateway, or by the Node plugin (with the same error contract).
        assert (info.domain, info.reason) == {
            "ingress-without-token": ("gateway.plugmesh", "AUTHENTICATION_REQUIRED"),
            "direct-with-bearer": (f"{NAME}.plugmesh", "AUTHENTICATION_REQUIRED"),
            "direct-forged": (f"{NAME}.plugmesh", "IDENTITY_FORGED"),
        }[how]

    after = await last_published(auth_mesh)
    assert (after.data if after else None) == (before.data if before else None)


async def test_not_serving_takes_it_out_of_rotation_until_it_serves_again(
    auth_mesh: Mesh, node_plugin: NodePlugin
) -> None:
    hello_request = message_class(auth_mesh, "SayHello")
    hello = auth_mesh.channel.unary_unary(
        f"/{GREETER}/SayHello",
        request_serializer=hello_request.SerializeToString,
        response_deserializer=message_class(auth_mesh, "SayHello", output=True).FromString,
    )

    async def health() -> registry_pb2.HealthStatus.ValueType:
        return (await registered(auth_mesh)).instances[0].health

    async def http_status(wanted: int) -> httpx.Response | None:
        response = await auth_mesh.http.get("/v1/greetings/rotation")
        return response if response.status_code == wanted else None

    node_plugin.process.send_signal(signal.SIGUSR1)
    try:

        async def not_serving() -> bool | None:
            return True if await health() == registry_pb2.HEALTH_STATUS_NOT_SERVING else None

        await eventually(not_serving, timeout_seconds=15, what=f"{NAME} NOT_SERVING")
        refused = await eventually(
            lambda: http_status(503), timeout_seconds=15, what="503 while NOT_SERVING"
        )
        with pytest.raises(grpc.aio.AioRpcError) as unavailable:
            await hello(_named(hello_request, "rotation"), timeout=5)
    finally:
        node_plugin.process.send_signal(signal.SIGUSR2)

    assert refused.json()["code"] == grpc.StatusCode.UNAVAILABLE.value[0]
    assert unavailable.value.code() == grpc.StatusCode.UNAVAILABLE
    back = await eventually(lambda: http_status(200), timeout_seconds=15, what="served again")
    assert back.json()["message"] == "Hello, rotation"
    assert await health() == registry_pb2.HEALTH_STATUS_SERVING
    reply = await hello(_named(hello_request, "again"), timeout=5)
    assert reply.message == "Hello, again"  # type: ignore[attr-defined]


def _named(cls: type[message.Message], name: str) -> message.Message:
    """A greeter request with its ``name`` set (the class is built at run time)."""
    return json_format.ParseDict({"name": name}, cls())
