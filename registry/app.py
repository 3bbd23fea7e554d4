"""The registry process: the :class:`Registry`, its gRPC server, and its own registration.

Usable in-process (tests, ``plugmesh up`` in one process)::

    server = RegistryServer(RegistryConfig(address="127.0.0.1:0", data_dir=tmp_path))
    await server.start()
    server.address          # "127.0.0.1:<port>"
    await server.close()

Every call is admitted or refused by the access its RPC declares before the servicer
runs (:mod:`registry.access`).

Startup: start the event bus (when it has one), open the store and load the
registrations it holds, serve, then register the registry itself as service ``registry``
so that it is listed like any other. Shutdown: deregister itself, end every watch stream
(so the server need not wait out its grace period for them), stop the server with grace,
stop health checks, close the store, then the event bus.
"""

from __future__ import annotations

import asyncio
import logging

from meshkit.descriptors import file_descriptor_set
from meshkit.errors import NotFound
from meshkit.events import EventBus
from meshkit.registration import Backoff
from meshkit.server import PluginServer, Servicer
from meshkit.tasks import cancel_and_wait
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from registry.access import RegistryAccess
from registry.config import RegistryConfig
from registry.core import Registry
from registry.model import Registration
from registry.outbox import RegistryOutbox
from registry.reflection_client import descriptor_fetcher
from registry.service import RegistryServicer
from registry.store import RegistryStore

log = logging.getLogger(__name__)

SERVICE_NAME = "registry"
_DESCRIPTOR = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]


class RegistryServer:
    """The whole registry process, with an explicit, idempotent lifecycle.

    Args:
        config: The registry's settings.
        event_bus: The registry's event bus, on its own database: events are written to
            its outbox with the changes and published to JetStream. Started before the
            registry, closed after it; ``None`` publishes nothing. Made in the event loop.
        health_backoff: Delays between reconnections of broken health watches.
        watcher_capacity: Changes a watcher may leave unread before its stream is ended
            with RESOURCE_EXHAUSTED.
    """

    def __init__(
        self,
        config: RegistryConfig,
        *,
        event_bus: EventBus | None = None,
        health_backoff: Backoff | None = None,
        watcher_capacity: int = 1024,
    ) -> None:
        self.config = config
        self.event_bus = event_bus
        outbox = RegistryOutbox(event_bus) if event_bus is not None else None
        self.registry = Registry(
            RegistryStore(config.resolved_database_url, outbox=outbox),
            lease_seconds=config.lease_seconds,
            reflection_timeout_seconds=config.reflection_timeout_seconds,
            health_backoff=health_backoff,
            watcher_capacity=watcher_capacity,
            fetch=descriptor_fetcher(config.mesh.tls),
            tls=config.mesh.tls,
        )
        self._server = PluginServer(
            SERVICE_NAME,
            [
                Servicer(
                    descriptor=_DESCRIPTOR,
                    add_to_server=registry_pb2_grpc.add_RegistryServiceServicer_to_server,
                    implementation=RegistryServicer(
                        self.registry, check_identity=config.mesh.tls is not None
                    ),
                )
            ],
            address=config.address,
            config=config.mesh,
            register=False,
            access=RegistryAccess(config.registration_secret),
        )
        if event_bus is not None:
            event_bus.count_in(self._server.metrics_registry)
            event_bus.trace_in(self._server.spans)
        self._instance_id = ""
        self._renewer: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False
        self._stopped = asyncio.Event()

    @property
    def address(self) -> str:
        """Where the registry serves, with the real port; empty before :meth:`start`."""
        return self._server.address

    @property
    def instance_id(self) -> str:
        """The registry's own instance id; empty before :meth:`start`."""
        return self._instance_id

    @property
    def plugin_server(self) -> PluginServer:
        """The underlying gRPC server (its ``health`` is the registry's own health)."""
        return self._server

    async def start(self) -> None:
        """Load the registrations, serve, and register itself. Safe to call twice.

        Raises:
            RuntimeError: The server was closed.
        """
        if self._started:
            return
        if self._closed:
            raise RuntimeError("the registry server was closed; make a new one")
        self._started = True
        if self.event_bus is not None:
            await self.event_bus.start()  # makes the outbox table the store writes to
        await self.registry.start()
        await self._server.start()
        await self._register_self()
        self._renewer = asyncio.create_task(self._renew_forever(), name="registry-self-renew")
        log.info("registry serving", extra={"address": self.address})

    async def wait(self) -> None:
        """Return once :meth:`close` has run."""
        await self._stopped.wait()

    async def close(self) -> None:
        """Deregister itself, end watches, stop serving, close the store. Safe to call twice."""
        if self._closed or not self._started:
            self._closed = True
            self._stopped.set()
            return
        self._closed = True
        try:
            await cancel_and_wait(self._renewer)
            if self._instance_id:
                await self.registry.deregister(self._instance_id)
            self.registry.end_watches()
            await self._server.stop(self.config.shutdown_grace_seconds)
            await self.registry.close()
        finally:
            try:
                if self.event_bus is not None:
                    await self.event_bus.close()  # a last flush of the outbox
            finally:
                self._stopped.set()

    async def _register_self(self) -> None:
        instance = await self.registry.register(
            Registration(
                service=SERVICE_NAME,
                address=self._server.address,
                grpc_services=(_DESCRIPTOR.full_name,),
                file_descriptor_set=file_descriptor_set([_DESCRIPTOR]).SerializeToString(),
                metadata={"role": "registry"},
            )
        )
        self._instance_id = instance.instance_id

    async def _renew_forever(self) -> None:
        # The registry renews its own lease like any instance would, three times a lease.
        while True:
            await asyncio.sleep(self.registry.lease_seconds / 3)
            try:
                self.registry.renew(self._instance_id)
            except NotFound:
                log.warning("the registry's own lease ran out; registering it again")
                await self._register_self()
