"""OpenTelemetry: one request's spans, from the gateway to the plugin to the event's
consumer, reach a real OTLP receiver as one trace with the right parents."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
import pytest_asyncio
from mcp_types import RequestParamsMeta

from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh, running_mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.observability.otlp import OtlpReceiver, ReceivedSpan
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def receiver() -> AsyncIterator[OtlpReceiver]:
    """The collector's trace service on a loopback port."""
    async with OtlpReceiver() as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def traced_mesh(
    tmp_path_factory: pytest.TempPathFactory, receiver: OtlpReceiver
) -> AsyncIterator[Mesh]:
    """A whole mesh exporting its spans to ``receiver``, every tenth of a second."""
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    async with running_mesh(tmp_path_factory.mktemp("traced"), env) as running:
        yield running


def log_lines(mesh: Mesh) -> list[dict[str, Any]]:
    """Every JSON line the mesh's processes logged so far."""
    path: Path = mesh.data_dir / "logs" / "mesh.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def one(spans: list[ReceivedSpan], service: str, kind: str, name: str) -> ReceivedSpan:
    """The single span of ``service`` of that kind and name."""
    found = [s for s in spans if s.service == service and s.kind == kind and s.name == name]
    assert len(found) == 1, f"{service} {kind} {name!r}: {found} among {spans}"
    return found[0]


async def test_a_request_is_one_trace_from_the_gateway_to_the_plugin_to_the_event_consumer(
    traced_mesh: Mesh, receiver: OtlpReceiver
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {
        **traced_mesh.bearer(traced_mesh.admin_token),
        "traceparent": f"00-{trace_id}-{caller_span}-01",
    }

    response = await traced_mesh.http.post(
        "/v1/machine-users", json={"name": "otel-robot"}, headers=headers
    )
    assert response.status_code == 200, response.text
    machine_user_id = response.json()["machineUser"]["machineUserId"]

    subject = "plugmesh.events.machine_user.created"

    # Each process exports on its own: wait for every one's spans.
    hops = {
        ("gateway", "SERVER"),
        ("gateway", "CLIENT"),
        ("machine-users", "SERVER"),
        ("machine-users", "PRODUCER"),
        ("audit", "CONSUMER"),
    }

    async def exported() -> list[ReceivedSpan] | None:
        spans = receiver.spans_of(trace_id)
        return spans if hops <= {(s.service, s.kind) for s in spans} else None

    spans = await eventually(exported, what="every hop's span", timeout_seconds=15)
    method = "plugmesh.machineusers.v1.MachineUserService/CreateMachineUser"
    http = one(spans, "gateway", "SERVER", "POST /v1/machine-users")
    client = one(spans, "gateway", "CLIENT", method)
    server = one(spans, "machine-users", "SERVER", method)
    publish = one(spans, "machine-users", "PRODUCER", f"publish {subject}")
    handled = one(spans, "audit", "CONSUMER", f"process {subject}")

    # Each hop is the child of the one before, the first of the caller's span.
    assert http.parent_id == caller_span
    assert client.parent_id == http.span_id
    assert server.parent_id == client.span_id
    assert publish.parent_id == server.span_id
    assert handled.parent_id == publish.span_id
    assert http.attributes["http.route"] == "/v1/machine-users"
    assert http.attributes["http.response.status_code"] == 200
    assert server.attributes["rpc.grpc.status_code"] == 0
    assert handled.attributes["messaging.consumer.group.name"] == "audit-all"
    assert not any(span.failed for span in (http, client, server, publish, handled))

    # One trace system: the ids the mesh logs and answers with are the spans' own.
    assert response.headers["traceresponse"].split("-")[1:3] == [trace_id, http.span_id]
    (created,) = [
        line
        for line in log_lines(traced_mesh)
        if line["message"] == "machine user created"
        and line.get("machine_user_id") == machine_user_id
    ]
    assert (created["trace_id"], created["span_id"]) == (trace_id, server.span_id)


async def test_a_request_the_caller_did_not_sample_is_not_exported(
    traced_mesh: Mesh, receiver: OtlpReceiver
) -> None:
    trace_id = secrets.token_hex(16)
    headers = {
        **traced_mesh.bearer(traced_mesh.admin_token),
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-00",
    }
    sampled_id = secrets.token_hex(16)
    sampled = {**headers, "traceparent": f"00-{sampled_id}-{secrets.token_hex(8)}-01"}

    assert (await traced_mesh.http.get("/v1/users", headers=headers)).status_code == 200
    assert (await traced_mesh.http.get("/v1/users", headers=sampled)).status_code == 200

    async def exported() -> list[ReceivedSpan] | None:
        spans = receiver.spans_of(sampled_id)
        return spans if {"gateway", "users"} <= {span.service for span in spans} else None

    # Each process exports its spans in the order they ended: once both processes sent
    # the later request's, they would have sent the earlier one's.
    await eventually(exported, what="the sampled request's spans", timeout_seconds=15)
    assert receiver.spans_of(trace_id) == []


async def test_a_request_without_traceparent_starts_a_sampled_trace_at_the_gateway(
    traced_mesh: Mesh, receiver: OtlpReceiver
) -> None:
    response = await traced_mesh.http.get(
        "/v1/users", headers=traced_mesh.bearer(traced_mesh.admin_token)
    )
    assert response.status_code == 200, response.text
    _, trace_id, span_id, _ = response.headers["traceresponse"].split("-")

    async def exported() -> list[ReceivedSpan] | None:
        spans = receiver.spans_of(trace_id)
        return spans if {"gateway", "users"} <= {span.service for span in spans} else None

    spans = await eventually(exported, what="the request's spans", timeout_seconds=15)
    http = one(spans, "gateway", "SERVER", "GET /v1/users")
    assert (http.span_id, http.parent_id) == (span_id, "")


async def test_a_tool_call_is_a_span_continuing_the_traceparent_of_its_meta(
    traced_mesh: Mesh, receiver: OtlpReceiver
) -> None:
    async def offered() -> bool | None:
        return (
            "verify_audit_chain" in traced_mesh.gateway.plugin_tools.offered().get("audit", {})
            or None
        )

    await eventually(offered, timeout_seconds=30, what="the audit plugin's tools offered")
    everything = users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern="*/*")
    caller = await traced_mesh.create_machine_user(
        "otel-tools", admin=True, permissions=users_pb2.Permissions(rules=[everything])
    )
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    url = f"http://{traced_mesh.gateway.http_address}/mcp"

    async with connected(url, caller.token, MODERN) as client:
        result = await client.call_tool(
            "audit__verify_audit_chain",
            {},
            # An open map (extra_items), which mypy does not know yet.
            meta=cast(RequestParamsMeta, {"traceparent": f"00-{trace_id}-{caller_span}-01"}),
        )
    assert not result.is_error, result

    method = "plugmesh.audit.v1.AuditService/VerifyAuditChain"

    async def exported() -> list[ReceivedSpan] | None:
        spans = receiver.spans_of(trace_id)
        names = {(s.service, s.kind, s.name) for s in spans}
        wanted = {
            ("gateway", "SERVER", "tools/call audit__verify_audit_chain"),
            ("gateway", "CLIENT", method),
            ("audit", "SERVER", method),
        }
        return spans if wanted <= names else None

    spans = await eventually(exported, what="the tool call's spans", timeout_seconds=15)
    tool = one(spans, "gateway", "SERVER", "tools/call audit__verify_audit_chain")
    upstream = one(spans, "gateway", "CLIENT", method)
    served = one(spans, "audit", "SERVER", method)
    assert tool.parent_id == caller_span
    assert upstream.parent_id == tool.span_id
    assert served.parent_id == upstream.span_id
    assert tool.attributes["gen_ai.tool.name"] == "audit__verify_audit_chain"
    assert not tool.failed
