"""The gateway process: catalog, upstreams, the gRPC ingress and the HTTP server.

Usable in-process (tests)::

    gateway = Gateway(GatewayConfig(grpc_address="127.0.0.1:0", http_address="127.0.0.1:0",
                                    mesh=mesh))
    await gateway.start()
    gateway.grpc_address        # "127.0.0.1:<port>"
    await gateway.stop()

Startup: follow the registry (the catalog syncs in the background), open upstreams,
link authentication to NATS (in the background, :mod:`gateway.auth`), start the MCP
front (:mod:`gateway.mcpfront`), serve the ingress (and HTTP, with the MCP front at
``/mcp``), both guarded by the protos' access options, then register as
service ``gateway``. Its contract is empty: the gateway serves no gRPC service of its
own, and since the registry would otherwise read its contract over reflection (which
lists every plugin), it sends a descriptor set holding only the health protocol. The
gateway reports NOT_SERVING until the catalog has synced once.

Shutdown, safe to call twice: NOT_SERVING, deregister, end the MCP notification streams
and the console's live feeds, stop HTTP and the ingress with grace, stop the MCP front and
the upstream MCP servers, then stop following the catalog and close the upstream channels.

The MCP front serves the tools of the upstream MCP servers of ``config.mcp.servers``
(:class:`gateway.mcpfront.federated.FederatedTools` over
:class:`gateway.mcpfront.federation.Upstreams`, ``mcp_upstreams``), each caller the ones
its permissions allow, each call recorded as ``tool.call.*`` events through the outbox
(:class:`gateway.mcpfront.call_events.OutboxCallLog`, ``mcp_calls``); a caller may pass
another :class:`gateway.mcpfront.Toolbox`. The servers are applied once the front runs
(they connect in the background; a server that is not READY lists no tools) and closed,
stdio children included, after the HTTP server.

Metrics: one Prometheus registry for the process (the HTTP side's requests, the ingress's
calls), served at the HTTP port's ``/metrics`` and, when ``metrics_address`` is set, on
that address too, as every meshkit process serves its own.

Traces (on when ``config.mesh.otel`` names an OTLP endpoint): one span recorder for the
process (:mod:`meshkit.spans`), shared by the HTTP side, the ingress, the upstream calls,
the event bus and the admin API, closed last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from typing import Any

from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2

from gateway.auth import GatewayAuth
from gateway.catalog import Catalog
from gateway.config import GatewayConfig
from gateway.console import Console, Leases, NatsEvents
from gateway.health import GatewayHealth, HealthSync
from gateway.http import GatewayApp, HttpServer, build_app
from gateway.ingress import IngressServer
from gateway.mcpfront import McpFront, Toolbox
from gateway.mcpfront.call_events import OutboxCallLog
from gateway.mcpfront.connection import ConnectionSettings
from gateway.mcpfront.federated import FederatedTools
from gateway.mcpfront.federation import Upstreams as McpUpstreams
from gateway.mcpfront.hooks import CatalogHooks, HookChain, MeshHookTransport
from gateway.mcpfront.hooks.metrics import HookMetrics
from gateway.mcpfront.plugin_tools import PluginTools
from gateway.mcpservers.app import build as build_mcp_servers
from gateway.mcpservers.tables import MIGRATIONS as MCP_SERVER_MIGRATIONS
from gateway.ratelimit import ExceededEvents, RateLimits
from gateway.upstream import Upstreams
from gateway.upstream_metrics import UpstreamCollector
from meshkit.config import advertised_host
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import Identity, PrincipalKind, signing_key
from meshkit.logging import configure_logging
from meshkit.metrics import MetricsEndpoint, RpcMetrics, process_registry
from meshkit.registration import Backoff, Registrar, Registration
from meshkit.server import until_signal
from meshkit.spans import open_recorder
from meshkit.version import package_version

log = logging.getLogger(__name__)

SERVICE_NAME = "gateway"
VERSION = package_version()
#: Who adds the servers of the servers file, in their ``mcp.server.created`` events.
_GATEWAY = Identity(PrincipalKind.SERVICE, SERVICE_NAME)
#: What a part's stop may take beyond the grace period before it is left behind.
_STEP_SECONDS = 5.0


class Gateway:
    """The whole gateway, with an explicit, idempotent lifecycle.

    Args:
        config: The gateway's settings.
        register: Whether to register with the registry.
        registry_backoff: Delays between reconnections of the registry watch.
        toolbox: The tools of the MCP front; those of the upstream MCP servers
            (``config.mcp.servers``) when None.
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        register: bool = True,
        registry_backoff: Backoff | None = None,
        toolbox: Toolbox | None = None,
    ) -> None:
        self.config = config
        #: The gateway's database: the upstream MCP servers, and the outbox of its events.
        self.database = Database(config.database_url)
        self.catalog = Catalog(
            config.registry_address,
            secret=config.mesh.registration_secret,
            backoff=registry_backoff,
            tls=config.mesh.tls,
        )
        #: Where the process's spans go; ``None`` with traces off.
        self.spans = open_recorder(config.mesh.otel, SERVICE_NAME)
        self.upstreams = Upstreams(
            self.catalog,
            close_grace_seconds=config.shutdown_grace_seconds,
            spans=self.spans,
            tls=config.mesh.tls,
        )
        self.health = GatewayHealth()
        #: The process's Prometheus registry.
        self.metrics_registry = process_registry("gateway")
        self.metrics_registry.register(UpstreamCollector(self.upstreams))
        self._metrics = (
            MetricsEndpoint(self.metrics_registry, config.metrics_address)
            if config.metrics_address
            else None
        )
        self._health_sync = HealthSync(self.catalog, self.health)
        #: Publishes ``mcp.server.*`` (and ``tool.call.*``) through the outbox; reaches
        #: NATS in the background, so the gateway serves while NATS is away.
        self.bus = EventBus(
            SERVICE_NAME,
            database=self.database,
            nats_url=config.mesh.nats_url,
            nats_tls=config.mesh.nats_tls,
            settings=config.events,
            grace_seconds=config.shutdown_grace_seconds,
            connect_in_background=True,
            metrics_registry=self.metrics_registry,
            spans=self.spans,
        )
        self.auth = GatewayAuth(config.auth, config.mesh, self.catalog, self.upstreams)
        #: The callers' rate limits, counted in NATS; None when no limit is set.
        self.rate_limits = (
            RateLimits(
                config.rate_limits,
                config.mesh.nats_url,
                replicas=config.events.stream_replicas,
                nats_tls=config.mesh.nats_tls,
                metrics_registry=self.metrics_registry,
                exceeded=ExceededEvents(self.database, self.bus.outbox),
            )
            if config.rate_limits.enabled
            else None
        )
        self.ingress = IngressServer(
            self.catalog,
            self.upstreams,
            self.health,
            address=config.grpc_address,
            default_deadline_seconds=config.default_deadline_seconds,
            max_message_bytes=config.max_message_bytes,
            guard=self.auth.grpc
            if self.rate_limits is None
            else self.rate_limits.grpc(self.auth.grpc),
            metrics=RpcMetrics(self.metrics_registry, known=self._known_method),
            access_log=config.http.access_log,
            spans=self.spans,
            tls=config.front_door,
        )
        #: The upstream MCP servers whose tools the MCP front serves.
        self.mcp_upstreams = McpUpstreams(
            ConnectionSettings(child_environment=config.mcp.child_environment),
            close_timeout_seconds=config.shutdown_grace_seconds,
        )
        #: Records every tool call of the MCP front as ``tool.call.*`` events.
        self.mcp_calls = OutboxCallLog(self.database, self.bus, arguments=config.mcp.call_arguments)
        #: The plugins' hooks into tool calls and listings, as the registry declares them
        #: and with the modes admins set (through the admin API below).
        hooks = CatalogHooks(lambda: self.catalog.snapshot, required=config.mcp.required_hooks)
        self.mcp_hooks = HookChain(
            hooks,
            MeshHookTransport(self.upstreams),
            recorded=HookMetrics(self.metrics_registry).record,
        )
        self._hooks = hooks
        self._filtering = hooks.filtering()
        #: The plugins' RPCs offered as MCP tools, as the registry declares them.
        self.plugin_tools = PluginTools(
            lambda: self.catalog.snapshot,
            self.upstreams,
            signing_key=signing_key(config.mesh.registration_secret),
            timeout_seconds=config.default_deadline_seconds,
        )
        self._plugin_listing = self.plugin_tools.offered()
        #: The MCP endpoint, on the HTTP port.
        federated = FederatedTools(
            self.mcp_upstreams,
            calls=self.mcp_calls,
            hooks=self.mcp_hooks,
            plugins=self.plugin_tools,
            limits=None if self.rate_limits is None else self.rate_limits.tools(),
        )
        self.mcp = McpFront(
            toolbox if toolbox is not None else federated,
            self.auth.http,
            config.mcp,
            issuer=config.auth.authorization_server,
            version=VERSION,
            nats_url=config.mesh.nats_url,
            nats_tls=config.mesh.nats_tls,
            spans=self.spans,
        )
        #: The admin API of the upstream MCP servers (``McpServerService``, its own port).
        self.mcp_servers = build_mcp_servers(
            self.database,
            self.bus,
            self.mcp_upstreams,
            hooks,
            address=config.mcp_servers_address,
            mesh=config.mesh,
            register=register,
            spans=self.spans,
        )
        #: The live console at ``/console`` on the HTTP port.
        self.console = Console(
            self.catalog,
            self.auth.http,
            NatsEvents(config.mesh.nats_url, tls=config.mesh.nats_tls),
            mcp_changes=self.mcp_upstreams.add_status_listener,
            leases=Leases(
                config.registry_address,
                secret=config.mesh.registration_secret,
                backoff=registry_backoff,
                tls=config.mesh.tls,
            ),
            tools=federated if toolbox is None else None,
        )
        self.http: HttpServer | None = None
        self._http_app: GatewayApp[Any] | None = None
        self._register = register
        self._registrar: Registrar | None = None
        self._started = False
        self._stopping: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._announcing: set[asyncio.Task[None]] = set()
        self._unlisten = self.mcp_upstreams.add_listener(self._tools_changed)
        self._unwatch = self.catalog.subscribe(lambda _: self._catalog_changed())
        hooks.overrides.add_listener(self._filters_changed)

    @property
    def grpc_address(self) -> str:
        """The ingress address other processes reach, with the real port."""
        host, _, _ = self.config.grpc_address.rpartition(":")
        return f"{advertised_host(host, self.config.mesh.advertise_host)}:{self.ingress.port}"

    @property
    def http_address(self) -> str:
        """The HTTP address with the real port; empty before :meth:`start`."""
        if self.http is None:
            return ""
        host, _, _ = self.config.http_address.rpartition(":")
        return f"{advertised_host(host, self.config.mesh.advertise_host)}:{self.http.port}"

    @property
    def metrics_address(self) -> str:
        """Where the metrics are served besides ``/metrics``; empty when not served."""
        return self._metrics.address if self._metrics is not None else ""

    @property
    def registrar(self) -> Registrar | None:
        """The registrar, once started with ``register=True``."""
        return self._registrar

    async def start(self) -> None:
        """Follow the registry, serve, register. Safe to call twice."""
        if self._started:
            return
        self._started = True
        if self._metrics is not None:
            await self._metrics.start()
        await self.database.upgrade(MCP_SERVER_MIGRATIONS)
        await self.bus.start()
        await self.catalog.start()
        await self.upstreams.start()
        await self._health_sync.start()
        await self.auth.start()
        if self.rate_limits is not None:
            await self.rate_limits.start()
        await self.ingress.start()
        await self.mcp.start()
        await self.mcp_servers.servers.seed(_GATEWAY, self.config.mcp.servers)
        await self.mcp_servers.servers.apply()
        await self.mcp_servers.hook_modes.apply()
        await self.mcp_servers.server.start()
        await self.mcp_servers.follower.start()
        self._http_app = build_app(
            self.catalog,
            self.upstreams,
            self.config.http,
            guard=self.auth.http
            if self.rate_limits is None
            else self.rate_limits.http(self.auth.http),
            metrics_registry=self.metrics_registry,
            mcp=self.mcp,
            console=self.console,
            spans=self.spans,
        )
        self.http = HttpServer(
            self._http_app,
            self.config.http_address,
            shutdown_grace_seconds=self.config.shutdown_grace_seconds,
            tls=self.config.front_door,
        )
        await self.http.start()
        if self._register:
            # With mutual TLS the gRPC port is a front door, which the mesh's channels do
            # not dial: the gateway registers its admin server's address, a mesh port.
            mesh_port = self.config.mesh.tls is not None
            self._registrar = Registrar(
                Registration(
                    service=SERVICE_NAME,
                    address=self.mcp_servers.server.address if mesh_port else self.grpc_address,
                    version=VERSION,
                    grpc_services=(),
                    file_descriptor_set=_health_only(),
                    metadata={"http_address": self.http_address, "grpc_address": self.grpc_address},
                ),
                registry_address=self.config.registry_address,
                secret=self.config.mesh.registration_secret,
                tls=self.config.mesh.tls,
            )
            await self._registrar.start()
        log.info(
            "gateway started",
            extra={"grpc_address": self.grpc_address, "http_address": self.http_address},
        )

    async def wait(self) -> None:
        """Return once stopped, or when the registration was refused for good."""
        waits: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._stopped.wait())]
        if self._registrar is not None:
            waits.append(asyncio.ensure_future(self._registrar.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop gracefully. Safe to call twice."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace_seconds))
        await asyncio.shield(self._stopping)

    async def _stop(self, grace_seconds: float | None) -> None:
        grace = self.config.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        try:
            await self.health.enter_graceful_shutdown()
            if self._registrar is not None:
                await self._registrar.close()
            bound = grace + _STEP_SECONDS
            await _within("the mcp-servers follower", self.mcp_servers.follower.close(), bound)
            await asyncio.gather(
                self.ingress.stop(grace),
                self._stop_http(),
                _within("the mcp-servers API", self.mcp_servers.server.stop(grace), bound),
            )
            await self._health_sync.close()
            await self.auth.close()
            if self.rate_limits is not None:
                await self.rate_limits.close()
            await self.upstreams.close()
            await self.catalog.close()
            await _within("the tool call events", self.mcp_calls.close(), bound)
            await _within("the event bus", self.bus.close(), bound)
            await _within("the database", self.database.close(), bound)
            if self._metrics is not None:
                await self._metrics.stop()
            if self.spans is not None:
                await self.spans.close()
        finally:
            self._stopped.set()
        log.info("gateway stopped")

    async def _stop_http(self) -> None:
        # Open notification streams would hold the HTTP server for its whole grace.
        self.mcp.drain()
        self.console.drain()
        if self.http is not None:
            await self.http.stop()
        if self._http_app is not None:
            self._http_app.close()
        await self.console.close()
        await self.mcp.close()
        self._unlisten()
        self._unwatch()
        await self.mcp_upstreams.close()
        for task in list(self._announcing):
            task.cancel()

    def _tools_changed(self) -> None:
        """The upstream tools changed: tell the MCP clients (in the background)."""
        task = asyncio.get_running_loop().create_task(self.mcp.tools_changed())
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    def _catalog_changed(self) -> None:
        """The mesh changed: a plugin's tools, or its hook, may have come or gone."""
        listing = self.plugin_tools.offered()
        if listing != self._plugin_listing:
            self._plugin_listing = listing
            self._tools_changed()
        self._filters_changed()

    def _filters_changed(self) -> None:
        """A FilterTools hook came, left or changed mode: what callers list may differ."""
        filtering = self._hooks.filtering()
        if filtering != self._filtering:
            self._filtering = filtering
            self._tools_changed()

    def _known_method(self, full_method: str) -> bool:
        return full_method.startswith("/grpc.") or self.catalog.method(full_method) is not None


async def _within(part: str, stopping: Awaitable[None], seconds: float) -> None:
    """Wait for ``stopping`` at most ``seconds``: a part that does not stop is logged and
    left behind, never holds the gateway's stop."""
    try:
        async with asyncio.timeout(seconds):
            await stopping
    except TimeoutError:
        log.error("stopping %s took longer than %.1f s; left behind", part, seconds)


def _health_only() -> descriptor_pb2.FileDescriptorSet:
    # Non-empty, so the registry does not ask the gateway's (aggregated) reflection; it
    # defines only infrastructure, so the contract is empty.
    files = descriptor_pb2.FileDescriptorSet()
    health_pb2.DESCRIPTOR.CopyToProto(files.file.add())
    return files


async def serve(gateway: Gateway) -> int:
    """Run ``gateway`` until SIGTERM or SIGINT, then stop it gracefully.

    Returns the exit code: 0 after a signal, 1 when the registration was refused.
    """
    await until_signal(gateway.start, gateway.stop, gateway.wait)
    refused = gateway.registrar.refused if gateway.registrar else None
    return 1 if refused else 0


def run(config: GatewayConfig) -> int:
    """Configure JSON logging and run the gateway until it stops; returns the exit code."""
    configure_logging(SERVICE_NAME, config.mesh.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(serve(Gateway(config)))
    return 130
