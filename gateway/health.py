"""``grpc.health.v1.Health`` of the gateway: itself, and every gRPC service it proxies.

``""`` is the gateway itself (SERVING while it runs). Each gRPC service of a registered
plugin (``plugmesh.users.v1.UserService``) is SERVING while its service has a SERVING
instance, NOT_SERVING otherwise, and unknown again once its service has left the
registry. :class:`HealthSync` keeps these statuses in step with the catalog.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.catalog import Catalog
from gateway.model import Snapshot
from meshkit.health import NOT_SERVING, SERVING, HealthServicer
from meshkit.tasks import cancel_and_wait

log = logging.getLogger(__name__)


class GatewayHealth(HealthServicer):
    """The toolkit's health servicer, able to forget a service that left."""

    async def remove(self, service: str) -> None:
        """Forget ``service``: Check answers NOT_FOUND and Watch SERVICE_UNKNOWN."""
        async with self._changed:
            if self._statuses.pop(service, None) is not None:
                self._changed.notify_all()

    def services(self) -> frozenset[str]:
        """Every service with a status, except the server itself (``""``)."""
        return frozenset(name for name in self._statuses if name)


def statuses(snapshot: Snapshot) -> dict[str, int]:
    """The health each proxied gRPC service should report in ``snapshot``."""
    result: dict[str, int] = {}
    for grpc_service, owner in snapshot.owners.items():
        service = snapshot.services.get(owner)
        result[grpc_service] = SERVING if service is not None and service.serving else NOT_SERVING
    return result


class HealthSync:
    """Follows the catalog and sets the health of every proxied gRPC service."""

    def __init__(self, catalog: Catalog, health: GatewayHealth) -> None:
        self._catalog = catalog
        self._health = health
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start following the catalog. Safe to call twice.

        The gateway itself reports NOT_SERVING until the catalog has synced once.
        """
        if self._task is None:
            if not self._catalog.ready:
                await self._health.set("", NOT_SERVING)
            self._task = asyncio.create_task(self._run(), name="gateway-health-sync")

    async def close(self) -> None:
        """Stop following. Safe to call twice."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        async for snapshot in self._catalog.changes():
            if self._catalog.ready and self._health.status("") != SERVING:
                await self._health.set("", SERVING)
            wanted = statuses(snapshot)
            for service in self._health.services() - set(wanted):
                await self._health.remove(service)
            for service, status in wanted.items():
                if self._health.status(service) != status:
                    await self._health.set(service, status)
