"""``grpc.health.v1.Health`` with Check, Watch and List.

The library's asyncio reference servicer has no List (added to the protocol later), so
this is a small servicer of our own.
"""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.grpc_types import Context

SERVING: int = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING: int = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN: int = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN

# The typeshed stubs for grpcio-health-checking predate List; the module has it.
_ListResponse: Any = health_pb2.HealthListResponse  # type: ignore[attr-defined]


class HealthServicer(health_pb2_grpc.HealthServicer):
    """Serving status per service name; ``""`` is the whole server."""

    def __init__(self) -> None:
        self._statuses: dict[str, int] = {"": SERVING}
        self._changed = asyncio.Condition()
        self._shutting_down = False

    def status(self, service: str = "") -> int:
        """The current status of ``service``."""
        return self._statuses.get(service, SERVICE_UNKNOWN)

    async def set(self, service: str, status: int) -> None:
        """Set the status of ``service``; ignored once shutdown has begun."""
        if self._shutting_down:
            return
        async with self._changed:
            self._statuses[service] = status
            self._changed.notify_all()

    async def enter_graceful_shutdown(self) -> None:
        """Report NOT_SERVING for every service, for good."""
        async with self._changed:
            self._shutting_down = True
            for service in self._statuses:
                self._statuses[service] = NOT_SERVING
            self._changed.notify_all()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> health_pb2.HealthCheckResponse:
        """Return the status of one service; NOT_FOUND for a service never set."""
        if request.service not in self._statuses:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=self._statuses[request.service])

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Context) -> None:
        """Send the status of one service, then every change of it."""
        last: int | None = None
        while True:
            async with self._changed:
                while (current := self.status(request.service)) == last:
                    await self._changed.wait()
            last = current
            await context.write(health_pb2.HealthCheckResponse(status=current))

    async def List(self, request: Any, context: Context) -> Any:
        """Return the status of every service this server knows."""
        response = _ListResponse()
        for service, status in self._statuses.items():
            response.statuses[service].status = status
        return response
