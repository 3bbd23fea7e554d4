"""Every refused authentication is an ``auth.failed`` event, in the stream and in the
audit log, with a fingerprint and never the credential; nothing stores a token."""

from __future__ import annotations

import hashlib
import uuid

import grpc
import pytest

from plugmesh.events.v1 import auth_events_pb2, event_pb2
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from services.machineusers import tokens
from tests.gateway.auth.failures import published
from tests.gateway.auth.mesh import Mesh
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def test_an_unknown_machine_token_is_recorded_by_fingerprint(auth_mesh: Mesh) -> None:
    token = tokens.issue().token  # well-formed, never issued
    request_id = str(uuid.uuid4())
    headers = {**auth_mesh.bearer(token), "x-request-id": request_id, "user-agent": "probe/1"}

    response = await auth_mesh.http.get("/v1/services", headers=headers)
    payload, raw = await published(auth_mesh, request_id)

    assert response.status_code == 401
    assert payload.reason == auth_events_pb2.AUTH_FAILURE_REASON_UNKNOWN_TOKEN
    assert payload.credential_type == auth_events_pb2.CREDENTIAL_TYPE_MACHINE_TOKEN
    assert payload.credential_fingerprint == hashlib.sha256(token.encode()).hexdigest()[:16]
    assert payload.rpc == "plugmesh.registry.v1.RegistryService.ListServices"
    assert (payload.http_method, payload.http_path) == ("GET", "/v1/services")
    assert (payload.ip_address, payload.user_agent) == ("127.0.0.1", "probe/1")
    assert payload.actor.type == event_pb2.ACTOR_TYPE_ANONYMOUS
    assert token[12:-4].encode() not in raw


async def test_a_missing_credential_is_recorded_without_a_fingerprint(auth_mesh: Mesh) -> None:
    request_id = str(uuid.uuid4())

    response = await auth_mesh.http.get("/v1/users", headers={"x-request-id": request_id})
    payload, _ = await published(auth_mesh, request_id)

    assert response.status_code == 401
    assert payload.reason == auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS
    assert payload.credential_fingerprint == ""


async def test_a_refused_grpc_call_is_recorded_too(auth_mesh: Mesh) -> None:
    request_id = str(uuid.uuid4())
    typo = auth_mesh.user_token[:-1] + ("A" if auth_mesh.user_token[-1] != "A" else "B")
    stub = registry_pb2_grpc.RegistryServiceStub(auth_mesh.channel)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ListServices(
            registry_pb2.ListServicesRequest(),
            metadata=(("authorization", f"Bearer {typo}"), ("x-request-id", request_id)),
            timeout=5,
        )
    auth_mesh.tokens.append(typo)
    payload, raw = await published(auth_mesh, request_id)

    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert payload.reason == auth_events_pb2.AUTH_FAILURE_REASON_MALFORMED
    assert (payload.http_method, payload.http_path) == ("", "")
    assert payload.ip_address
    assert typo[12:-4].encode() not in raw


async def test_failures_are_in_the_audit_log_without_the_token(auth_mesh: Mesh) -> None:
    token = tokens.issue().token
    request_id = str(uuid.uuid4())
    await auth_mesh.http.get(
        "/v1/services", headers={**auth_mesh.bearer(token), "x-request-id": request_id}
    )
    await published(auth_mesh, request_id)
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]

    async def recorded() -> str | None:
        response = await auth_mesh.http.get(
            "/v1/audit/entries", params={"action": "auth.failed", "pageSize": 1000}, headers=admin
        )
        assert response.status_code == 200, response.text
        return response.text if fingerprint in response.text else None

    text = await eventually(recorded, timeout_seconds=10, what="the failure in the audit log")

    assert token[12:-4] not in text


async def test_no_token_is_stored_in_plain_text_under_the_data_dir(auth_mesh: Mesh) -> None:
    # Tokens of every kind have been through the mesh by now (the module's setup made two).
    await auth_mesh.http.get("/v1/services", headers=auth_mesh.bearer(auth_mesh.admin_token))

    assert auth_mesh.tokens
    assert auth_mesh.leaks() == []
