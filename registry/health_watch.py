"""Watching every instance's health with ``grpc.health.v1.Health/Watch``.

One task per instance holds a Watch stream for the whole server (service ``""``) and
reports each status as it is pushed. A stream that breaks reports UNREACHABLE at once,
then the task reconnects with the toolkit's jittered exponential backoff, on a fresh
channel each time so the channel's own (much longer) reconnect backoff never delays
noticing a restarted instance.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2

from meshkit.registration import Backoff
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls, dial
from registry.model import Health

log = logging.getLogger(__name__)

HealthCallback = Callable[[str, Health], None]
"""Called with an instance id and its new health; must not block."""

_WATCH = "/grpc.health.v1.Health/Watch"
_SERVING = health_pb2.HealthCheckResponse.SERVING


# Sooner than the toolkit's default: a restarted instance should be seen serving again soon.
DEFAULT_BACKOFF = Backoff(initial_seconds=0.1)


class HealthWatcher:
    """Owns one watch task per instance.

    Args:
        on_health: Receives every status an instance reports, and UNREACHABLE when its
            stream breaks. Repeated statuses are reported again; the callback dedupes.
        backoff: Delays between reconnection attempts.
        tls: Mutual TLS to the instances; plaintext when ``None``.
    """

    def __init__(
        self,
        on_health: HealthCallback,
        *,
        backoff: Backoff | None = None,
        tls: MeshTls | None = None,
    ) -> None:
        self._on_health = on_health
        self._tls = tls
        self._backoff = backoff or DEFAULT_BACKOFF
        self._tasks: dict[str, tuple[str, asyncio.Task[None]]] = {}

    async def watch(self, instance_id: str, address: str) -> None:
        """Start watching an instance; a no-op when it is already watched at ``address``."""
        current = self._tasks.get(instance_id)
        if current is not None:
            if current[0] == address and not current[1].done():
                return
            await self.unwatch(instance_id)
        task = asyncio.create_task(
            self._watch(instance_id, address), name=f"health-watch-{instance_id}"
        )
        self._tasks[instance_id] = (address, task)

    async def unwatch(self, instance_id: str) -> None:
        """Stop watching an instance and wait for its task to end."""
        entry = self._tasks.pop(instance_id, None)
        if entry is not None:
            await cancel_and_wait(entry[1])

    async def close(self) -> None:
        """Stop every watch. Safe to call twice."""
        tasks = [task for _, task in self._tasks.values()]
        self._tasks.clear()
        await cancel_and_wait(*tasks)

    @property
    def watched(self) -> frozenset[str]:
        """Ids of the instances being watched."""
        return frozenset(self._tasks)

    async def _watch(self, instance_id: str, address: str) -> None:
        failures = 0
        request = health_pb2.HealthCheckRequest(service="")
        while True:
            try:
                async with dial(address, self._tls) as channel:
                    watch = channel.unary_stream(
                        _WATCH,
                        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                        response_deserializer=health_pb2.HealthCheckResponse.FromString,
                    )
                    async for response in watch(request):
                        failures = 0
                        self._on_health(instance_id, _health(response.status))
                reason = "stream ended"
            except grpc.aio.AioRpcError as exc:
                reason = exc.code().name
            self._on_health(instance_id, Health.UNREACHABLE)
            failures += 1
            delay = self._backoff.delay(failures)
            log.debug(
                "health watch broken",
                extra={"instance_id": instance_id, "address": address, "reason": reason},
            )
            await asyncio.sleep(delay)


def _health(status: int) -> Health:
    # UNKNOWN and SERVICE_UNKNOWN mean the instance cannot vouch for itself: not serving.
    return Health.SERVING if status == _SERVING else Health.NOT_SERVING
