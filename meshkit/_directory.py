"""Which instances serve which gRPC service, as the registry's watch stream tells
(:class:`~meshkit.watch.RegistryWatch`). Only SERVING instances are listed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from meshkit.registration import Backoff
from meshkit.tls import MeshTls
from meshkit.watch import RegistryStub, RegistryWatch
from plugmesh.registry.v1 import registry_pb2

__all__ = ["Directory"]

_SERVING = registry_pb2.HEALTH_STATUS_SERVING

Instances = tuple[registry_pb2.Instance, ...]


class Directory:
    """The serving instances of every gRPC service registered in the mesh.

    Args:
        registry_address: ``host:port`` of the registry.
        secret: The registration secret, sent with the watch when set.
        backoff: Delays between reconnections of a broken watch.
        on_change: Called with every address the table holds, after each change.
        tls: Mutual TLS to the registry; plaintext when ``None``.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        on_change: Callable[[frozenset[str]], None] = lambda _: None,
        tls: MeshTls | None = None,
    ) -> None:
        self._watch = RegistryWatch(
            registry_address,
            read=_as_listed,
            on_change=self._publish,
            secret=secret,
            backoff=backoff,
            name="discovery",
            tls=tls,
        )
        self._on_change = on_change
        self._serving: dict[str, Instances] = {}
        self._changed = asyncio.Event()

    @property
    def synced(self) -> bool:
        """Whether the registry's view has arrived at least once."""
        return self._watch.synced

    async def wait_synced(self) -> None:
        """Return once the registry's view has arrived."""
        await self._watch.wait_synced()

    async def wait_changed(self) -> None:
        """Return at the next change of the table."""
        await self._changed.wait()

    def instances(self, grpc_service: str) -> Instances:
        """The SERVING instances of ``grpc_service`` (``pkg.Service``)."""
        return self._serving.get(grpc_service, ())

    def serving(self, grpc_service: str) -> tuple[str, ...]:
        """The addresses of SERVING instances of ``grpc_service`` (``pkg.Service``)."""
        return tuple(instance.address for instance in self.instances(grpc_service))

    async def start(self) -> None:
        """Follow the registry in the background; returns at once. Safe to call twice."""
        await self._watch.start()

    async def close(self) -> None:
        """Stop following the registry. Safe to call twice."""
        await self._watch.close()

    def _publish(self, services: Mapping[str, registry_pb2.Service]) -> None:
        serving: dict[str, Instances] = {}
        for service in services.values():
            instances = tuple(i for i in service.instances if i.health == _SERVING)
            for name in service.grpc_services:
                serving[name] = instances
        self._serving = serving
        self._changed.set()
        self._changed = asyncio.Event()
        self._on_change(frozenset(i.address for found in serving.values() for i in found))


async def _as_listed(service: registry_pb2.Service, registry: RegistryStub) -> registry_pb2.Service:
    return service  # the message has all discovery needs: no call to the registry
