"""One trace id from an HTTP request to the plugin, its event, and the event's consumer."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import NotFoundError

from meshkit.events import parse_event
from meshkit.events.relay import MSG_ID
from meshkit.events.streams import EVENTS_STREAM
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from tests.events.helpers import connect
from tests.gateway.auth.mesh import Mesh
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


def log_lines(observed_mesh: Mesh) -> list[dict[str, Any]]:
    """Every JSON line the mesh's processes logged so far."""
    path: Path = observed_mesh.data_dir / "logs" / "mesh.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def handled_events_logged() -> Iterator[None]:
    """The subscriber's per-event line is DEBUG: turned on for it alone (not the root,
    where grpc's own DEBUG logging deadlocks)."""
    logger = logging.getLogger("meshkit.events.subscriber")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        logger.setLevel(level)


async def test_a_traceparent_flows_from_http_through_the_plugin_and_its_event_to_audit(
    observed_mesh: Mesh,
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    headers = {
        **observed_mesh.bearer(observed_mesh.admin_token),
        "traceparent": f"00-{trace_id}-{caller_span}-01",
    }

    with handled_events_logged():
        response = await observed_mesh.http.post(
            "/v1/machine-users", json={"name": "traced-robot"}, headers=headers
        )
        assert response.status_code == 200, response.text
        machine_user_id = response.json()["machineUser"]["machineUserId"]

        # The event on NATS carries the trace in its traceparent header.
        nc = await connect(observed_mesh.nats.url)
        try:
            msg = await nc.jetstream().get_last_msg(
                EVENTS_STREAM, "plugmesh.events.machine_user.created"
            )
        finally:
            await nc.close()
        assert msg.data is not None
        event = parse_event(msg.data)
        assert event.subject.endswith(machine_user_id)
        assert msg.headers is not None
        _, header_trace, plugin_span, _ = msg.headers["traceparent"].split("-")
        assert header_trace == trace_id
        assert msg.headers[MSG_ID] == event.id

        async def consumed() -> list[dict[str, Any]] | None:
            lines = [
                line
                for line in log_lines(observed_mesh)
                if line["message"] == "event handled" and line.get("event_id") == event.id
            ]
            return lines or None

        (handled,) = await eventually(consumed, what="the audit plugin handling the event")

    # The plugin logged in a span of its own, within the caller's trace; the event left
    # from that span, and the consumer handled it in the same context.
    (created,) = [
        line
        for line in log_lines(observed_mesh)
        if line["message"] == "machine user created"
        and line.get("machine_user_id") == machine_user_id
    ]
    assert created["trace_id"] == trace_id
    assert created["span_id"] == plugin_span != caller_span
    assert handled["consumer"] == "audit-all"
    assert handled["trace_id"] == trace_id
    assert handled["span_id"] == plugin_span

    # And the audit log recorded it (the handler logs before its transaction commits).
    async def recorded() -> list[dict[str, Any]] | None:
        entries = await observed_mesh.http.get(
            "/v1/audit/entries", params={"action": "machine_user.created"}, headers=headers
        )
        assert entries.status_code == 200, entries.text
        traced = [e for e in entries.json()["entries"] if e.get("traceId") == trace_id]
        return traced or None

    traced = await eventually(recorded, what="the audit entry of the traced request")
    assert len(traced) == 1


async def test_a_request_without_traceparent_gets_a_new_trace_of_its_own(
    observed_mesh: Mesh,
) -> None:
    response = await observed_mesh.http.post(
        "/v1/machine-users",
        json={"name": "untraced-robot"},
        headers=observed_mesh.bearer(observed_mesh.admin_token),
    )
    assert response.status_code == 200, response.text
    machine_user_id = response.json()["machineUser"]["machineUserId"]

    (created,) = [
        line
        for line in log_lines(observed_mesh)
        if line["message"] == "machine user created"
        and line.get("machine_user_id") == machine_user_id
    ]
    assert len(created["trace_id"]) == 32
    assert created["trace_id"] != "0" * 32


async def test_a_call_through_the_grpc_ingress_continues_the_callers_trace(
    observed_mesh: Mesh,
) -> None:
    trace_id, caller_span = secrets.token_hex(16), secrets.token_hex(8)
    metadata = (
        ("authorization", f"Bearer {observed_mesh.admin_token}"),
        ("traceparent", f"00-{trace_id}-{caller_span}-01"),
    )
    stub = machineusers_pb2_grpc.MachineUserServiceStub(observed_mesh.channel)
    created = await stub.CreateMachineUser(
        machineusers_pb2.CreateMachineUserRequest(
            machine_user=machineusers_pb2.MachineUser(name="ingress-robot")
        ),
        metadata=metadata,
    )
    machine_user_id = created.machine_user.machine_user_id

    (line,) = [
        line
        for line in log_lines(observed_mesh)
        if line["message"] == "machine user created"
        and line.get("machine_user_id") == machine_user_id
    ]
    assert line["trace_id"] == trace_id
    assert line["span_id"] != caller_span


async def test_a_refused_request_sends_its_trace_with_the_auth_failed_event(
    observed_mesh: Mesh,
) -> None:
    trace_id = secrets.token_hex(16)
    headers = {
        "Authorization": "Bearer pmk_not_a_real_token",
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
    }
    assert (await observed_mesh.http.get("/v1/users", headers=headers)).status_code == 401

    async def sent() -> str | None:
        nc = await connect(observed_mesh.nats.url)
        try:
            msg = await nc.jetstream().get_last_msg(EVENTS_STREAM, "plugmesh.events.auth.failed")
        except NotFoundError:
            return None  # not stored yet: the gateway publishes it without waiting
        finally:
            await nc.close()
        traceparent = (msg.headers or {}).get("traceparent", "")
        return traceparent if trace_id in traceparent else None

    traceparent = await eventually(sent, what="auth.failed with the request's trace")
    assert traceparent.split("-")[1] == trace_id
