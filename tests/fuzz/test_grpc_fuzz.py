"""Malformed and random protobuf requests to every gRPC method the mesh serves, at the
gateway's ingress port and straight at each process (registry and plugins).

Methods are found through each server's reflection and resolved in the descriptor pool.
Each method gets the same seeded cases (:mod:`tests.fuzz.wire`): the empty message, random
valid messages, and truncated, bit-flipped, wrong-wire-type, huge-length, invalid UTF-8,
unknown-field and deeply nested variants. Every call carries a deadline and must be
answered before it with a proper status: OK, or a code other than UNKNOWN and INTERNAL
with a message. Nothing is logged as an error, and afterwards every process still
reports SERVING.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.fuzz.wire import Case, cases
from tests.gateway.auth.mesh import Mesh

pytestmark = [pytest.mark.fuzz, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(240)]

SEED = 20261125
CASES_PER_METHOD = 30
DEADLINE_SECONDS = 3.0
CONCURRENCY = 8
#: An answer later than this after the deadline is a hang, whatever the status says.
GRACE_SECONDS = 2.0
#: Codes a malformed request must never produce: they mean an unhandled failure.
UNHANDLED = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}


@dataclass(frozen=True)
class Target:
    """A gRPC server of the mesh and the metadata its callers send."""

    name: str
    address: str
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Answer:
    """How one call ended."""

    target: str
    method: str
    kind: str
    code: grpc.StatusCode | None  # None: no answer before deadline plus grace
    details: str

    def __str__(self) -> str:
        code = self.code.name if self.code else "NO ANSWER"
        return f"{self.target} {self.method} [{self.kind}] {code} {self.details!r:.120}"


def targets(auth_mesh: Mesh) -> list[Target]:
    """The gateway's ingress with the admin's token, and every process as a mesh service."""
    found = [Target("gateway", auth_mesh.gateway.grpc_address, mesh_bearer(auth_mesh))]
    for name, address in [
        ("registry", auth_mesh.registry.address),
        ("users", auth_mesh.users.server.address),
        ("audit", auth_mesh.audit.server.address),
        ("machine-users", auth_mesh.machine_users.server.address),
    ]:
        found.append(Target(name, address, auth_mesh.mesh_metadata))
    return found


def mesh_bearer(auth_mesh: Mesh) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {auth_mesh.admin_token}"),)


async def served_methods(channel: grpc.aio.Channel) -> list[descriptor.MethodDescriptor]:
    """Every method of every service the server lists over reflection."""
    stub: Any = reflection_pb2_grpc.ServerReflectionStub(channel)  # type: ignore[arg-type]  # the stubs are sync-only
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names: list[str] = []
    async for response in stub.ServerReflectionInfo(iter([request]), timeout=5):
        names.extend(service.name for service in response.list_services_response.service)
    pool = descriptor_pool.Default()
    return [method for name in names for method in pool.FindServiceByName(name).methods]


async def one_request(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def send(
    channel: grpc.aio.Channel, method: descriptor.MethodDescriptor, data: bytes, metadata: Any
) -> tuple[grpc.StatusCode, str]:
    """Call ``method`` with ``data``; a response stream is read up to its first message."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    options: dict[str, Any] = {"timeout": DEADLINE_SECONDS, "metadata": metadata}
    request: Any = one_request(data) if method.client_streaming else data
    try:
        if not method.server_streaming:
            kind: Any = channel.stream_unary if method.client_streaming else channel.unary_unary
            await kind(path)(request, **options)
            return grpc.StatusCode.OK, ""
        kind = channel.stream_stream if method.client_streaming else channel.unary_stream
        call = kind(path)(request, **options)
        async for _ in call:
            break  # answered; a watch would go on until the deadline
        call.cancel()
        code = await call.code()
        return (grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED else code), ""
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""


async def fuzz(auth_mesh: Mesh) -> list[Answer]:
    """Send every case to every method of every target."""
    rng = random.Random(SEED)
    gate = asyncio.Semaphore(CONCURRENCY)
    answers: list[Answer] = []

    async def one(
        target: Target, channel: grpc.aio.Channel, method: descriptor.MethodDescriptor, case: Case
    ) -> None:
        async with gate:
            try:
                code, details = await asyncio.wait_for(
                    send(channel, method, case.data, target.metadata),
                    DEADLINE_SECONDS + GRACE_SECONDS,
                )
            except TimeoutError:
                code, details = None, ""  # recorded as a hang
            answers.append(
                Answer(
                    target.name,
                    method.full_name,
                    case.kind,
                    code,
                    details,
                )
            )

    for target in targets(auth_mesh):
        async with grpc.aio.insecure_channel(target.address) as channel:
            methods = await served_methods(channel)
            assert methods, f"{target.name} lists no methods"
            calls = [
                one(target, channel, method, case)
                for method in methods
                for case in cases(method.input_type, rng, CASES_PER_METHOD)
            ]
            await asyncio.gather(*calls)
    return answers


async def serving(auth_mesh: Mesh) -> dict[str, str]:
    """Each target's overall health status."""
    found: dict[str, str] = {}
    for target in targets(auth_mesh):
        async with grpc.aio.insecure_channel(target.address) as channel:
            health: Any = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
            found[target.name] = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return found


def logged_errors(auth_mesh: Mesh) -> list[str]:
    """The messages of the mesh's log records at ERROR and above."""
    lines = (auth_mesh.data_dir / "logs" / "mesh.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r["message"] for r in records if r["level"] in ("error", "critical")]


async def test_malformed_and_random_requests_get_proper_statuses_before_their_deadline(
    auth_mesh: Mesh,
) -> None:
    answers = await fuzz(auth_mesh)

    by_code = Counter(a.code.name if a.code else "NO ANSWER" for a in answers)
    print(f"\n{len(answers)} calls: {dict(sorted(by_code.items()))}")
    assert len(answers) >= 2000
    assert {a.target for a in answers} == {t.name for t in targets(auth_mesh)}
    hangs = [str(a) for a in answers if a.code in (None, grpc.StatusCode.DEADLINE_EXCEEDED)]
    assert hangs == []
    unhandled = [str(a) for a in answers if a.code in UNHANDLED]
    assert unhandled == [], "\n".join(unhandled)
    silent = [str(a) for a in answers if a.code != grpc.StatusCode.OK and not a.details]
    assert silent == []
    assert logged_errors(auth_mesh) == []
    assert await serving(auth_mesh) == dict.fromkeys(
        (t.name for t in targets(auth_mesh)), "SERVING"
    )
