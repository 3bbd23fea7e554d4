"""A plugin's gRPC server: its servicers plus health, reflection, registration and shutdown.

A Python plugin is its servicer plus a few lines::

    config = MeshConfig.from_env()
    server = PluginServer(
        "users",
        [Servicer.of(users_pb2, "UserService", users_pb2_grpc.add_UserServiceServicer_to_server,
                     UserService(store))],
        address=config.address_of("users", "127.0.0.1:50061"),
        config=config,
    )
    sys.exit(run(server))

Every call is served in its caller's trace, and counted and timed in the server's
Prometheus registry (:mod:`meshkit.interceptors`), which the plugin's event bus shares;
with a metrics address (``PLUGMESH_<NAME>_METRICS_ADDRESS``) the registry is served at
``http://<address>/metrics`` (:mod:`meshkit.metrics`).

With traces on (``OTEL_EXPORTER_OTLP_ENDPOINT``, :mod:`meshkit.spans`) every call is a
span too, and so are the calls and events of the clients attached to the server
(discovery, the event bus), all exported under the server's name.

Shutdown runs in order: health NOT_SERVING, deregister, stop with grace, close clients,
stop serving metrics, export the last spans.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import grpc
from google.protobuf import descriptor, descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from meshkit.access import AccessInterceptor, AccessPolicy
from meshkit.config import ConfigError, MeshConfig, advertised_host
from meshkit.descriptors import file_descriptor_set, plugin_version
from meshkit.health import SERVING, HealthServicer
from meshkit.interceptors import MeshInterceptor
from meshkit.logging import configure_logging
from meshkit.malformed import MalformedRequestInterceptor
from meshkit.metrics import MetricsEndpoint, RpcMetrics, process_registry
from meshkit.reflection import V1, V1ALPHA, enable_reflection
from meshkit.registration import Registrar, Registration
from meshkit.spans import SpanRecorder, open_recorder
from meshkit.tls import add_port

log = logging.getLogger(__name__)

Closer = Callable[[], Awaitable[None]]


class AddressInUseError(OSError):
    """A server could not bind its listen address (a plugin's, the gateway's ports)."""


@dataclass(frozen=True)
class Servicer:
    """One gRPC service implementation and how to add it to a server."""

    descriptor: descriptor.ServiceDescriptor
    add_to_server: Callable[[Any, grpc.aio.Server], None]
    implementation: object

    @classmethod
    def of(
        cls,
        pb2: ModuleType,
        service: str,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
        implementation: object,
    ) -> Servicer:
        """Build a Servicer from a generated ``*_pb2`` module and the service's short name."""
        return cls(pb2.DESCRIPTOR.services_by_name[service], add_to_server, implementation)

    @property
    def name(self) -> str:
        """The full name, for example ``plugmesh.users.v1.UserService``."""
        return self.descriptor.full_name


class PluginServer:
    """A ``grpc.aio`` server with health, reflection and registration.

    Args:
        name: The service's short name in the registry, for example ``"users"``.
        servicers: The plugin's own services.
        address: Where to listen, ``host:port``; port 0 picks a free port.
        config: The mesh settings.
        register: Whether to register with the registry (the registry itself does not).
        version: The version to register; default: the first servicer's contract version.
        metadata: Extra metadata sent at registration.
        metrics_address: Where to serve the metrics, ``host:port`` (port 0 picks a free
            port); default: ``PLUGMESH_<NAME>_METRICS_ADDRESS`` of ``config``, and none
            when that is unset.
        source_info: The contract's files as ``protoc --include_source_info`` writes
            them, for their comments (see :mod:`meshkit.descriptors`); plugmesh's own
            protos need none.
        spans: Where the spans go when the server is part of a process that has its
            recorder (the gateway), which closes it; default: a recorder of the server's
            own when ``config`` turns traces on.
        access: When set, every call of the servicers is admitted or refused by its
            method's declared access before the servicer runs (:mod:`meshkit.access`);
            health and reflection stay open. ``None`` leaves the servicers to check.
    """

    def __init__(
        self,
        name: str,
        servicers: Sequence[Servicer],
        *,
        address: str,
        config: MeshConfig,
        register: bool = True,
        version: str | None = None,
        metadata: Mapping[str, str] | None = None,
        metrics_address: str | None = None,
        source_info: descriptor_pb2.FileDescriptorSet | None = None,
        spans: SpanRecorder | None = None,
        access: AccessPolicy | None = None,
    ) -> None:
        self.name = name
        #: The process's Prometheus registry: its calls, its event bus.
        self.metrics_registry = process_registry(name)
        self._rpc_metrics = RpcMetrics(self.metrics_registry)
        listen = metrics_address or config.metrics_address_of(name)
        self._metrics = MetricsEndpoint(self.metrics_registry, listen) if listen else None
        #: Where the process's spans go; ``None`` with traces off.
        self.spans = spans if spans is not None else open_recorder(config.otel, name)
        self._own_spans = spans is None
        self.health = HealthServicer()
        self._servicers = tuple(servicers)
        self._listen = address
        self._config = config
        self._register = register
        self._version = version
        self._metadata = dict(metadata or {})
        self._source_info = source_info
        self._access = access
        self._server: grpc.aio.Server | None = None
        self._registrar: Registrar | None = None
        self._startups: list[Closer] = []
        self._closers: list[Closer] = []
        self._address = ""
        self._stopping: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        """The address the server listens on, with the real port; empty before start."""
        return self._address

    @property
    def metrics_address(self) -> str:
        """Where the metrics are served, with the real port; empty when not served."""
        return self._metrics.address if self._metrics is not None else ""

    @property
    def registrar(self) -> Registrar | None:
        """The registrar, once started with ``register=True``."""
        return self._registrar

    @property
    def config(self) -> MeshConfig:
        """The mesh settings the server was built with."""
        return self._config

    def add_startup(self, startup: Closer) -> None:
        """Run ``startup`` inside the event loop before the server starts serving."""
        self._startups.append(startup)

    def add_closer(self, closer: Closer) -> None:
        """Run ``closer`` at shutdown, after the server stopped (newest first)."""
        self._closers.append(closer)

    async def start(self) -> None:
        """Bind, serve, report SERVING and start registering. Safe to call twice."""
        if self._server is not None:
            return
        for startup in self._startups:
            await startup()
        if self._metrics is not None:
            try:
                await self._metrics.start()
            except OSError as exc:
                raise AddressInUseError(f"{self.name} cannot serve metrics: {exc}") from exc
        interceptors: list[grpc.aio.ServerInterceptor] = [
            # Outermost, so that calls refused as malformed are counted and traced too.
            MeshInterceptor(f"{self.name}.plugmesh", self._rpc_metrics, spans=self.spans),
            MalformedRequestInterceptor(f"{self.name}.plugmesh"),
        ]
        if self._access is not None:
            # Innermost: its refusals are mapped and counted like the servicer's errors.
            interceptors.append(self._access_interceptor(self._access))
        # No SO_REUSEPORT: a second server on a taken port must fail, not share its traffic.
        server = grpc.aio.server(interceptors=interceptors, options=[("grpc.so_reuseport", 0)])
        for servicer in self._servicers:
            servicer.add_to_server(servicer.implementation, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [s.name for s in self._servicers]
        enable_reflection(
            server, [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name]
        )
        host, _, _ = self._listen.rpartition(":")
        try:
            port = add_port(server, self._listen, self._config.tls)
        except RuntimeError as exc:
            raise AddressInUseError(f"{self.name} cannot listen on {self._listen}: {exc}") from exc
        self._address = f"{advertised_host(host, self._config.advertise_host)}:{port}"
        await server.start()
        self._server = server
        for service_name in names:
            await self.health.set(service_name, SERVING)
        log.info("serving", extra={"address": self._address, "services": names})
        if self._register:
            self._registrar = Registrar(
                Registration(
                    service=self.name,
                    address=self._address,
                    version=self._version or self._contract_version(),
                    grpc_services=tuple(names),
                    file_descriptor_set=file_descriptor_set(
                        (s.descriptor for s in self._servicers), source_info=self._source_info
                    ),
                    metadata=self._metadata,
                ),
                registry_address=self._config.registry_address,
                secret=self._config.registration_secret,
                tls=self._config.tls,
            )
            await self._registrar.start()

    def _access_interceptor(self, policy: AccessPolicy) -> AccessInterceptor:
        health = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        return AccessInterceptor(
            (s.descriptor for s in self._servicers), policy, open_services=(health, V1ALPHA, V1)
        )

    async def wait(self) -> None:
        """Return when the server has stopped or its registration was refused for good."""
        if self._server is None:
            return
        # Shielded: cancelling wait_for_termination() breaks a later server.stop().
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(asyncio.shield(self._server.wait_for_termination()))
        ]
        if self._registrar is not None:
            waits.append(asyncio.ensure_future(self._registrar.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """NOT_SERVING, deregister, stop with grace, close clients. Safe to call twice."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace_seconds))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace_seconds: float | None) -> None:
        grace = self._config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        await self.health.enter_graceful_shutdown()
        if self._registrar is not None:
            await self._registrar.close()
        if self._server is not None:
            await self._server.stop(grace)
        for closer in reversed(self._closers):
            try:
                await closer()
            except Exception:
                log.exception("closing a client failed")
        if self._metrics is not None:
            await self._metrics.stop()
        if self.spans is not None and self._own_spans:
            await self.spans.close()
        log.info("stopped")

    def _contract_version(self) -> str:
        return plugin_version(self._servicers[0].descriptor) if self._servicers else ""


async def until_signal(
    start: Callable[[], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    finished: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start a process, run it until SIGTERM or SIGINT (or until ``finished()`` returns),
    then stop it; ``stop`` runs even when ``start`` fails."""
    loop = asyncio.get_running_loop()
    signalled = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    try:
        await start()
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(signalled.wait())]
        if finished is not None:
            waits.append(asyncio.ensure_future(finished()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
    finally:
        await stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


async def serve(server: PluginServer) -> int:
    """Run ``server`` until SIGTERM or SIGINT, then stop it gracefully.

    Returns the process exit code: 0 after a signal, 1 when the registration was refused.
    """
    await until_signal(server.start, server.stop, server.wait)
    refused = server.registrar.refused if server.registrar else None
    return 1 if refused else 0


def run(server: PluginServer) -> int:
    """Configure JSON logging and run ``server`` in a new event loop until it stops.

    Returns the exit code for ``sys.exit``.
    """
    configure_logging(server.name, server.config.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(server))
    return 130


_Config = TypeVar("_Config")


def run_from_env(
    name: str, read: Callable[[], _Config], build: Callable[[_Config], PluginServer]
) -> int:
    """A plugin's ``main``: read its settings, build its server and :func:`run` it.

    Args:
        name: The plugin's name, which starts the message of a setting that is wrong.
        read: Reads the settings from the environment.
        build: Makes the server from them.

    Returns:
        The exit code: 2 when a setting cannot be used, else that of :func:`run`.
    """
    try:
        config = read()
    except ConfigError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    return run(build(config))
