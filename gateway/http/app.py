"""The gateway's HTTP application: a plain ASGI app.

Routes, in order: the MCP front's paths (``/mcp``, ``/mcp/s/<server>``, the protected
resource metadata; :mod:`gateway.mcpfront`), the console's (``/console`` and below;
:mod:`gateway.console`), ``/healthz``, ``/readyz``, ``/metrics``,
``/openapi.json``, ``/docs`` (and its assets), then every route of the route table. The
table is rebuilt when the catalog's set of methods changes (its ``schema_generation``),
in the catalog's callback, so a request only looks its path up in the compiled table it
finds.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Generic

from google.rpc import code_pb2, status_pb2
from prometheus_client import CollectorRegistry

from gateway.auth.guard import verified_caller
from gateway.http import docs
from gateway.http.access_log import answering_with_trace, request_id_of
from gateway.http.asgi import JSON, ClientDisconnected, Receive, Scope, Send, send_response
from gateway.http.calls import Transcoder
from gateway.http.errors import HttpError, MethodNotAllowed, RouteNotFound, status_json
from gateway.http.headers import scope_trace
from gateway.http.metrics import CONTENT_TYPE, HttpMetrics
from gateway.http.openapi import openapi_document
from gateway.http.ports import (
    CatalogView,
    ConsoleEndpoint,
    M,
    McpEndpoint,
    RequestGuard,
    SnapshotView,
    UpstreamCalls,
)
from gateway.http.render import dumps
from gateway.http.router import split_path
from gateway.http.routes import RouteTable, build_routes
from gateway.http.settings import HttpSettings
from gateway.http.spans import end_request_span, start_request_span
from meshkit.spans import SpanRecorder

__all__ = ["GatewayApp", "build_app"]

log = logging.getLogger(__name__)

_UNMATCHED = "unmatched"
#: The metrics label of a CORS preflight (gateway.http.cors).
_PREFLIGHT = "preflight"


class GatewayApp(Generic[M]):
    """The ASGI app; build it with :func:`build_app`.

    Attributes:
        metrics: The app's Prometheus metrics.
    """

    def __init__(
        self,
        catalog: CatalogView[M],
        upstreams: UpstreamCalls[M],
        settings: HttpSettings,
        *,
        metrics_registry: CollectorRegistry | None = None,
        guard: RequestGuard | None = None,
        mcp: McpEndpoint | None = None,
        console: ConsoleEndpoint | None = None,
        spans: SpanRecorder | None = None,
    ) -> None:
        self._catalog = catalog
        self._mcp = mcp
        self._console = console
        self._spans = spans
        self._settings = settings
        self._transcoder = Transcoder(upstreams, settings, guard)
        self.metrics = HttpMetrics(metrics_registry)
        self._table: RouteTable[M] = build_routes(())
        self._table = self._build(catalog.snapshot)
        self._openapi: tuple[int, bytes] | None = None
        self._unsubscribe = catalog.subscribe(self._on_change)
        self._fixed = {
            "/healthz": self._healthz,
            "/readyz": self._readyz,
            "/metrics": self._metrics,
            "/openapi.json": self._openapi_json,
            "/docs": self._docs,
        }

    @property
    def routes(self) -> RouteTable[M]:
        """The current route table."""
        return self._table

    def close(self) -> None:
        """Stop following the catalog. Safe to call twice."""
        self._unsubscribe()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets are not served: the server refuses them
        started = time.perf_counter()
        method: str = scope["method"]
        label = _UNMATCHED
        status = 500
        cors = self._settings.cors
        span = None if self._spans is None else start_request_span(self._spans, scope)
        trace, _ = scope_trace(scope)
        send = answering_with_trace(scope, send, trace)
        try:
            if cors.is_preflight(scope):
                label = _PREFLIGHT
                status = await cors.answer_preflight(scope, send)
                return
            send = cors.wrap(scope, send)
            mcp_label = self._mcp.route(scope["path"]) if self._mcp is not None else None
            console_label = self._console.route(scope["path"]) if self._console else None
            fixed = self._fixed.get(scope["path"])
            if self._mcp is not None and mcp_label is not None:
                label = mcp_label
                status = await self._mcp(scope, receive, send)
            elif self._console is not None and console_label is not None:
                label = console_label
                status = await self._console(scope, receive, send)
            elif fixed is not None and method in ("GET", "HEAD"):
                label = scope["path"]
                status = await fixed(send)
            elif scope["path"].startswith(docs.ASSET_PREFIX) and method in ("GET", "HEAD"):
                label = docs.ASSET_PREFIX
                status = await self._asset(scope["path"][len(docs.ASSET_PREFIX) :], send)
            else:
                label, status = await self._transcode(scope, receive, send)
        except HttpError as exc:
            status = await _send_error(send, exc)
        except ClientDisconnected:
            status = 499
        except Exception:
            log.exception("an HTTP request failed", extra={"route": label, "method": method})
            failure = status_pb2.Status(code=code_pb2.INTERNAL, message="internal error")
            await send_response(send, 500, status_json(failure))
        finally:
            seconds = time.perf_counter() - started
            self.metrics.observe(label, method, status, seconds)
            if span is not None:
                end_request_span(span, method, label, status)
            self._settings.access_log.http(
                method=method,
                route=label,
                path=scope["path"],
                status=status,
                seconds=seconds,
                trace=trace,
                request_id=request_id_of(scope),
                caller=verified_caller(),
            )

    async def _transcode(self, scope: Scope, receive: Receive, send: Send) -> tuple[str, int]:
        table = self._table
        raw = scope.get("raw_path")
        raw_path = raw.decode("latin-1") if raw else scope["path"]
        segments = split_path(raw_path)
        if segments is None:
            raise RouteNotFound(f"no route for {raw_path!r}", reason="ROUTE_NOT_FOUND")
        match = table.router.match(scope["method"], segments)
        if match.route is None:
            if match.allowed:
                allowed = ", ".join(match.allowed)
                raise MethodNotAllowed(
                    f"{scope['method']} is not allowed on {raw_path}; allowed: {allowed}",
                    reason="METHOD_NOT_ALLOWED",
                    metadata={"allow": allowed},
                    headers={"Allow": allowed},
                )
            raise RouteNotFound(
                f"no route for {scope['method']} {raw_path}",
                reason="ROUTE_NOT_FOUND",
                metadata={"path": raw_path},
            )
        label = match.route.label
        try:
            status = await self._transcoder.handle(
                scope, receive, send, match.route, match.segments
            )
        except HttpError as exc:
            status = await _send_error(send, exc)
        except ClientDisconnected:
            status = 499
        return label, status

    def _on_change(self, snapshot: SnapshotView[M]) -> None:
        if snapshot.schema_generation != self._table.generation:
            self._table = self._build(snapshot)

    def _build(self, snapshot: SnapshotView[M]) -> RouteTable[M]:
        table = build_routes(snapshot.methods(), snapshot.schema_generation)
        log.info(
            "HTTP routes compiled",
            extra={"routes": len(table.routes), "generation": table.generation},
        )
        return table

    async def _healthz(self, send: Send) -> int:
        await send_response(send, 200, b'{"status":"SERVING"}')
        return 200

    async def _readyz(self, send: Send) -> int:
        ready = self._catalog.ready
        status = 200 if ready else 503
        body = {"status": "SERVING" if ready else "NOT_SERVING", "routes": len(self._table.routes)}
        await send_response(send, status, dumps(body))
        return status

    async def _metrics(self, send: Send) -> int:
        await send_response(send, 200, self.metrics.exposition(), content_type=CONTENT_TYPE)
        return 200

    async def _openapi_json(self, send: Send) -> int:
        table = self._table
        if self._openapi is None or self._openapi[0] != table.generation:
            document = openapi_document(table.routes, title=self._settings.title)
            self._openapi = (table.generation, dumps(document))
        await send_response(send, 200, self._openapi[1], content_type=JSON)
        return 200

    async def _docs(self, send: Send) -> int:
        body = docs.page(self._settings.title)
        await send_response(send, 200, body, content_type=b"text/html; charset=utf-8")
        return 200

    async def _asset(self, name: str, send: Send) -> int:
        found = docs.asset(name)
        if found is None:
            raise RouteNotFound(f"no docs asset {name!r}", reason="ROUTE_NOT_FOUND")
        content_type, body = found
        headers = [(b"cache-control", b"public, max-age=86400")]
        await send_response(send, 200, body, content_type=content_type, headers=headers)
        return 200


def build_app(
    catalog: CatalogView[M],
    upstreams: UpstreamCalls[M],
    settings: HttpSettings | None = None,
    *,
    metrics_registry: CollectorRegistry | None = None,
    guard: RequestGuard | None = None,
    mcp: McpEndpoint | None = None,
    console: ConsoleEndpoint | None = None,
    spans: SpanRecorder | None = None,
) -> GatewayApp[M]:
    """Build the gateway's ASGI app over ``catalog`` and ``upstreams``.

    Args:
        catalog: Method lookup and changes (``gateway.catalog.Catalog``).
        upstreams: Calls to the plugins (``gateway.upstream.Upstreams``).
        settings: HTTP settings; defaults when ``None``.
        metrics_registry: Where the HTTP metrics go; a registry of the app's own when
            ``None`` (``/metrics`` exposes it).
        guard: Authenticates and authorizes each routed request (the gateway passes
            :class:`gateway.auth.HttpGuard`); ``None`` transcodes without authentication,
            for tests of transcoding alone.
        mcp: The MCP front, served at the paths it claims; none when ``None``.
        console: The console (:class:`gateway.console.Console`), served at the paths it
            claims; none when ``None``.
        spans: Where each request's server span goes (:mod:`gateway.http.spans`); none
            when ``None`` (traces off).
    """
    return GatewayApp(
        catalog,
        upstreams,
        settings or HttpSettings(),
        metrics_registry=metrics_registry,
        guard=guard,
        mcp=mcp,
        console=console,
        spans=spans,
    )


async def _send_error(send: Send, error: HttpError) -> int:
    headers = [(name.lower().encode(), value.encode()) for name, value in error.headers.items()]
    await send_response(send, error.status, status_json(error.to_status()), headers=headers)
    return error.status


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
