"""The toolkit's access interceptor: each call admitted or refused by its method's declared
access, before the servicer runs; undeclared and unknown access refused; health and
reflection open. A real PluginServer on port 0 serving a contract built on the fly."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.access import KNOWN_ACCESS, Access, Metadata, declared_access
from meshkit.config import MeshConfig
from meshkit.descriptors import build_pool
from meshkit.errors import Unauthenticated, error_info
from meshkit.health import SERVING
from meshkit.server import PluginServer, Servicer
from plugmesh.options.v1 import options_pb2
from tests.support.calls import call_empty

PACKAGE = "test.access.v1"
SERVICE = f"{PACKAGE}.GuardedService"
STRAY = f"{PACKAGE}.StrayService"
Handler = Any  # grpc.RpcMethodHandler is generic only in the stubs
PASS = ("x-test-pass", "yes")

#: The contract's methods: (name, declared access or None for no option, server streaming).
METHODS: list[tuple[str, int | None, bool]] = [
    ("Public", options_pb2.ACCESS_PUBLIC, False),
    ("Authenticated", options_pb2.ACCESS_AUTHENTICATED, False),
    ("Admin", options_pb2.ACCESS_ADMIN, False),
    ("Internal", options_pb2.ACCESS_INTERNAL, False),
    ("Watch", options_pb2.ACCESS_INTERNAL, True),
    ("Undeclared", None, False),
    ("WatchUndeclared", None, True),
    ("Unspecified", options_pb2.ACCESS_UNSPECIFIED, False),
    ("Unknown", 99, False),
]


def _service() -> descriptor.ServiceDescriptor:
    file = descriptor_pb2.FileDescriptorProto(
        name="test/access/v1/guarded.proto",
        package=PACKAGE,
        syntax="proto3",
        dependency=["plugmesh/options/v1/options.proto"],
    )
    file.message_type.add(name="Nothing")
    service = file.service.add(name="GuardedService")
    for name, access, streaming in METHODS:
        rpc = service.method.add(
            name=name,
            input_type=f".{PACKAGE}.Nothing",
            output_type=f".{PACKAGE}.Nothing",
            server_streaming=streaming,
        )
        if access is not None:
            options: Any = rpc.options  # the stubs cannot type an extension's value
            options.Extensions[options_pb2.access] = access
    pool, _ = build_pool([file])
    return pool.FindServiceByName(SERVICE)


class Recorded:
    """The policy under test: admits a call carrying ``PASS``, records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[Access, str]] = []

    def admit(self, access: Access, method: str, metadata: Metadata) -> None:
        self.asked.append((access, method))
        if PASS not in list(metadata):
            raise Unauthenticated(f"{method} wants the pass", reason="NO_PASS")


def _add(_implementation: object, server: grpc.aio.Server) -> None:
    async def unary(request: bytes, context: Any) -> bytes:
        return b""

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        yield b""
        yield b""

    handlers: dict[str, Handler] = {
        name: grpc.unary_stream_rpc_method_handler(stream)
        if streaming
        else grpc.unary_unary_rpc_method_handler(unary)
        for name, _, streaming in METHODS
    }
    stray: dict[str, Handler] = {"Ping": grpc.unary_unary_rpc_method_handler(unary)}
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(SERVICE, handlers),
            # Served, but neither guarded nor open: added behind the server's back.
            grpc.method_handlers_generic_handler(STRAY, stray),
        )
    )


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[PluginServer, Recorded]]:
    policy = Recorded()
    server = PluginServer(
        "guarded",
        [Servicer(_service(), _add, object())],
        address="127.0.0.1:0",
        config=MeshConfig.from_env({"PLUGMESH_DATA_DIR": str(tmp_path)}),
        register=False,
        access=policy,
    )
    await server.start()
    yield server, policy
    await server.stop(0)


async def _call(
    address: str, method: str, metadata: Sequence[tuple[str, str]], *, service: str = SERVICE
) -> tuple[str, str | None]:
    streaming = {name: s for name, _, s in METHODS}.get(method, False)
    async with grpc.aio.insecure_channel(address) as channel:
        error = await call_empty(
            channel, f"/{service}/{method}", server_streaming=streaming, metadata=metadata
        )
    if error is None:
        return "OK", None
    info = error_info(error)
    return error.code().name, info.reason if info is not None else None


@pytest.mark.parametrize(
    ("method", "access"),
    [(name, access) for name, access, _ in METHODS if access in KNOWN_ACCESS],
    ids=[name for name, access, _ in METHODS if access in KNOWN_ACCESS],
)
async def test_a_declared_method_is_served_or_refused_by_the_policy_before_it_runs(
    served: tuple[PluginServer, Recorded], method: str, access: Access
) -> None:
    server, policy = served

    refused = await _call(server.address, method, ())
    admitted = await _call(server.address, method, (PASS,))

    assert refused == ("UNAUTHENTICATED", "NO_PASS")
    assert admitted == ("OK", None)
    assert policy.asked == [(access, f"{SERVICE}.{method}")] * 2


@pytest.mark.parametrize(
    ("service", "method"),
    [
        (SERVICE, "Undeclared"),
        (SERVICE, "WatchUndeclared"),
        (SERVICE, "Unspecified"),
        (SERVICE, "Unknown"),
        (STRAY, "Ping"),
    ],
    ids=["undeclared", "undeclared-stream", "unspecified", "unknown", "unlisted-service"],
)
async def test_a_method_without_a_known_access_is_refused_whatever_the_caller_sends(
    served: tuple[PluginServer, Recorded], service: str, method: str
) -> None:
    server, policy = served

    got = await _call(server.address, method, (PASS,), service=service)

    assert got == ("PERMISSION_DENIED", "ACCESS_UNDECLARED")
    assert policy.asked == []


async def test_a_method_no_one_serves_is_still_unimplemented(
    served: tuple[PluginServer, Recorded],
) -> None:
    server, _ = served

    assert (await _call(server.address, "NotInTheContract", (PASS,)))[0] == "UNIMPLEMENTED"


async def test_health_and_reflection_stay_open(served: tuple[PluginServer, Recorded]) -> None:
    server, policy = served
    async with grpc.aio.insecure_channel(server.address) as channel:
        health: Any = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))

    assert reply.status == SERVING
    assert policy.asked == []


@pytest.mark.parametrize(
    ("access", "expected"),
    [
        (None, None),
        (options_pb2.ACCESS_UNSPECIFIED, None),
        (99, None),
        *[(known, known) for known in sorted(KNOWN_ACCESS)],
    ],
    ids=["none", "unspecified", "unknown", "public", "authenticated", "admin", "internal"],
)
def test_declared_access_is_none_unless_a_known_level_is_declared(
    access: int | None, expected: int | None
) -> None:
    by_access = {a: name for name, a, streaming in METHODS if not streaming}
    method = _service().methods_by_name[by_access[access]]

    assert declared_access(method) == expected
