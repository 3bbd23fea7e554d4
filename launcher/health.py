"""``plugmesh health <name>``: one ``grpc.health.v1`` check, for container health checks.

A compose health check runs it inside the process's own container, so the address comes
from the same environment the process read: its gRPC address variable, dialled on
loopback when the process listens on every interface.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TextIO

import grpc
from grpc_health.v1 import health_pb2

from launcher.addresses import join_address, split_address
from launcher.processes import process_named
from meshkit.config import WILDCARD_HOSTS
from meshkit.tls import MeshTls, dial

__all__ = ["check_health", "dial_address"]

# The typed stubs of grpc_health lack the stub methods, so the call is spelled out.
_HEALTH_CHECK = "/grpc.health.v1.Health/Check"
_SERVING = health_pb2.HealthCheckResponse.SERVING


def dial_address(name: str, env: Mapping[str, str]) -> str:
    """Where to reach process ``name`` from its own container or machine.

    Raises:
        KeyError: No process has that name.
    """
    variable = process_named(name).listen[0]  # its gRPC address
    address = env.get(variable.name) or variable.default
    host, port = split_address(address)
    return join_address("127.0.0.1" if host in WILDCARD_HOSTS else host, port)


async def check_health(
    address: str,
    service: str,
    timeout_seconds: float,
    out: TextIO,
    err: TextIO,
    tls: MeshTls | None = None,
) -> int:
    """Ask ``address`` for the health of ``service`` (``""``: the whole server), over
    mutual TLS with ``tls``.

    Prints the status; returns 0 when SERVING, 1 otherwise (unreachable included).
    """
    async with dial(address, tls) as channel:
        check = channel.unary_unary(
            _HEALTH_CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        try:
            answer = await check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout_seconds
            )
        except grpc.aio.AioRpcError as exc:
            print(f"plugmesh: {address}: {exc.code().name}: {exc.details()}", file=err)
            return 1
    print(health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status), file=out)
    return 0 if answer.status == _SERVING else 1
