"""Rate limits on two gateway replicas sharing the mesh's NATS: every door refuses a
caller over its limit in its own form, one caller's exhaustion leaves others alone, and
the limit holds across both replicas under concurrent load."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import Counter
from typing import Any

import grpc
import httpx
import nats
import pytest
from google.rpc import code_pb2, error_details_pb2
from mcp import MCPError
from nats.aio.msg import Msg

from gateway.ratelimit import RATE_LIMITED
from meshkit.errors import status_of
from meshkit.events import parse_event, subject_of, unpack_payload
from plugmesh.events.v1.rate_limit_events_pb2 import RateLimitExceeded
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth.mesh import Mesh
from tests.gateway.mcp.clients import MODERN, connected
from tests.gateway.ratelimit.conftest import (
    GET_SERVICE,
    GET_SERVICE_LIMIT,
    LIST_SERVICES_LIMIT,
    SLOW_LIMIT,
    UP,
    Replicas,
    one_window,
)
from tests.support.waiting import eventually, until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]


def _http(gateway_address: str, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://{gateway_address}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10.0,
    )


async def test_a_caller_over_its_limit_gets_429_with_retry_after(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    token = await replicas.machine_user(auth_mesh)
    await one_window()
    async with _http(replicas.a.http_address, token) as http:
        allowed = [await http.get("/v1/services/registry") for _ in range(GET_SERVICE_LIMIT)]
        refused = await http.get("/v1/services/registry")

    assert [answer.status_code for answer in allowed] == [200] * GET_SERVICE_LIMIT
    assert refused.status_code == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 86400
    body = refused.json()
    assert body["code"] == code_pb2.RESOURCE_EXHAUSTED
    info = next(d for d in body["details"] if d["@type"].endswith("ErrorInfo"))
    assert info["reason"] == "RATE_LIMITED"
    assert info["metadata"] == {
        "key": GET_SERVICE,
        "limit": f"{GET_SERVICE_LIMIT}/86400s",
        "retry_after_seconds": str(retry_after),
    }


async def test_a_caller_over_its_limit_gets_resource_exhausted_over_grpc(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    token = await replicas.machine_user(auth_mesh)
    metadata = (("authorization", f"Bearer {token}"),)
    request = registry_pb2.GetServiceRequest(service="registry")
    await one_window()
    async with grpc.aio.insecure_channel(replicas.b.grpc_address) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        for _ in range(GET_SERVICE_LIMIT):
            await stub.GetService(request, metadata=metadata, timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetService(request, metadata=metadata, timeout=10)

    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert GET_SERVICE in (refused.value.details() or "")
    trailers = dict(refused.value.trailing_metadata() or ())
    retry = error_details_pb2.RetryInfo()
    assert any(detail.Unpack(retry) for detail in status_of(refused.value).details)
    assert retry.retry_delay.seconds == int(trailers["retry-after"]) > 0


async def test_an_rpc_is_one_count_over_http_and_grpc_on_either_replica(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    token = await replicas.machine_user(auth_mesh)
    metadata = (("authorization", f"Bearer {token}"),)
    await one_window()
    async with (
        _http(replicas.a.http_address, token) as http,
        grpc.aio.insecure_channel(replicas.b.grpc_address) as channel,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        for _ in range(GET_SERVICE_LIMIT - 1):
            assert (await http.get("/v1/services/registry")).status_code == 200
        await stub.GetService(
            registry_pb2.GetServiceRequest(service="registry"), metadata=metadata, timeout=10
        )
        refused = await http.get("/v1/services/registry")

    assert refused.status_code == 429


async def test_one_callers_exhaustion_does_not_limit_another(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    spent, fresh = await replicas.machine_user(auth_mesh), await replicas.machine_user(auth_mesh)
    await one_window()
    async with (
        _http(replicas.a.http_address, spent) as first,
        _http(replicas.b.http_address, fresh) as second,
    ):
        for _ in range(GET_SERVICE_LIMIT):
            await first.get("/v1/services/registry")
        exhausted = await first.get("/v1/services/registry")
        other = [await second.get("/v1/services/registry") for _ in range(GET_SERVICE_LIMIT)]
        other_route = await first.get("/v1/services")

    assert exhausted.status_code == 429
    assert [answer.status_code for answer in other] == [200] * GET_SERVICE_LIMIT
    # The limit is per key too: the exhausted caller still reaches another RPC.
    assert other_route.status_code == 200


async def test_an_mcp_call_over_the_limit_is_a_json_rpc_error_and_not_forwarded(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    token = await replicas.machine_user(auth_mesh)
    await one_window()
    url = f"http://{replicas.a.http_address}/mcp"
    async with connected(url, token, MODERN) as client:
        for _ in range(SLOW_LIMIT):
            await client.call_tool(f"{UP}__slow", {"steps": 1, "step_seconds": 0})
        with pytest.raises(MCPError) as refused:
            await client.call_tool(f"{UP}__slow", {"steps": 1, "step_seconds": 0})
        ran = await client.call_tool(f"{UP}__events", {})

    assert refused.value.code == RATE_LIMITED
    assert refused.value.data["reason"] == "RATE_LIMITED"
    assert refused.value.data["server"] == UP
    assert refused.value.data["tool"] == "slow"
    assert refused.value.data["retryAfterSeconds"] > 0
    # The upstream ran the admitted call only (``events`` lists what it ran).
    assert str(ran.structured_content).count("slow finished") == SLOW_LIMIT


async def test_two_replicas_under_concurrent_load_admit_the_limit_within_ten_percent(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    token = await replicas.machine_user(auth_mesh)
    total, workers = 4 * LIST_SERVICES_LIMIT, 20
    await one_window()
    async with (
        _http(replicas.a.http_address, token) as a,
        _http(replicas.b.http_address, token) as b,
    ):
        turns = itertools.cycle((("a", a), ("b", b)))
        queue: asyncio.Queue[tuple[str, httpx.AsyncClient]] = asyncio.Queue()
        for _ in range(total):
            queue.put_nowait(next(turns))
        answers: Counter[tuple[str, int]] = Counter()

        async def work() -> None:
            while not queue.empty():
                name, http = queue.get_nowait()
                answers[(name, (await http.get("/v1/services")).status_code)] += 1

        await asyncio.gather(*(work() for _ in range(workers)))

    admitted = answers[("a", 200)] + answers[("b", 200)]
    print(f"two replicas admitted {admitted} of {total} calls; limit {LIST_SERVICES_LIMIT}")
    assert {status for _, status in answers} <= {200, 429}
    assert sum(answers.values()) == total
    assert abs(admitted - LIST_SERVICES_LIMIT) <= 0.1 * LIST_SERVICES_LIMIT
    # Both replicas admitted calls and refused calls: the count was the shared one.
    assert min(answers[(name, status)] for name in "ab" for status in (200, 429)) > 0


async def test_a_callers_refusals_in_a_window_are_audited_once_across_replicas(
    auth_mesh: Mesh, replicas: Replicas
) -> None:
    allow = users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=f"{UP}/*")
    created = await auth_mesh.create_machine_user(
        f"audited-{uuid.uuid4().hex[:8]}", permissions=users_pb2.Permissions(rules=[allow])
    )
    actor = created.machine_user.machine_user_id
    published: list[str] = []
    nc = await nats.connect(auth_mesh.nats.url)

    async def heard(msg: Msg) -> None:
        event = parse_event(msg.data)
        payload = unpack_payload(event)
        if isinstance(payload, RateLimitExceeded) and payload.actor.id == actor:
            published.append(event.id)

    await nc.subscribe(subject_of("rate_limit.exceeded"), cb=heard)
    await nc.flush()
    await one_window()
    try:
        refused = []
        for gateway in (replicas.a, replicas.b):
            async with _http(gateway.http_address, created.token) as http:
                answers = [await http.get("/v1/services/registry") for _ in range(5)]
            refused += [answer for answer in answers if answer.status_code == 429]
        # Both replicas refused in this window; the event has one id whoever writes it.
        await until(lambda: bool(published), timeout_seconds=30, what="the event published")
    finally:
        await nc.close()
    admin = auth_mesh.bearer(auth_mesh.admin_token)

    async def audited() -> list[dict[str, Any]] | None:
        response = await auth_mesh.http.get(
            "/v1/audit/entries",
            params={"action": "rate_limit.exceeded", "userId": actor},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        entries: list[dict[str, Any]] = response.json().get("entries", [])
        return entries or None

    entries = await eventually(audited, timeout_seconds=30, what="the refusal audited")

    assert len(refused) == 5 + 5 - GET_SERVICE_LIMIT
    assert len(set(published)) == 1
    (entry,) = entries
    assert entry["entryId"] == published[0]
    assert entry["outcome"] == "OUTCOME_DENIED"
    assert (entry["actor"]["type"], entry["actor"]["id"]) == ("ACTOR_TYPE_MACHINE", actor)
    assert entry["details"]["key"] == GET_SERVICE
    assert entry["details"]["limit"] == str(GET_SERVICE_LIMIT)
