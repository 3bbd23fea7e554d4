"""The gateway's HTTP/JSON side: ``google.api.http`` transcoding to the plugins' gRPC.

Wiring (the gateway process, inside its event loop)::

    from gateway.http import HttpServer, HttpSettings, build_app

    settings = HttpSettings.from_env()                 # PLUGMESH_GATEWAY_HTTP_* variables
    app = build_app(catalog, upstreams, settings)      # gateway.catalog / gateway.upstream
    server = HttpServer(app, "127.0.0.1:8080", shutdown_grace_seconds=5)
    await server.start()                               # port 0 allowed
    server.address                                     # "127.0.0.1:<real port>"
    ...
    await server.stop()                                # in-flight requests get the grace
    app.close()                                        # stop following the catalog

``build_app`` takes anything shaped like :class:`CatalogView` and :class:`UpstreamCalls`
(``gateway.catalog.Catalog`` and ``gateway.upstream.Upstreams`` are). The route table is
compiled from ``catalog.snapshot.methods()`` and recompiled in the catalog's change
callback when ``schema_generation`` moves. ``/readyz`` follows ``catalog.ready``.

Served: every ``google.api.http`` binding (``additional_bindings`` included),
``POST /<package.Service>/<Method>`` for RPCs without a rule, ``/openapi.json``,
``/docs``, ``/healthz``, ``/readyz`` and ``/metrics``. DESIGN §5 is the specification.

Modules: :mod:`~gateway.http.template` (path templates), :mod:`~gateway.http.router`
(the compiled trie), :mod:`~gateway.http.routes` (bindings from descriptors),
:mod:`~gateway.http.transcode` (request messages from path, query and body),
:mod:`~gateway.http.render` (JSON and stream framings), :mod:`~gateway.http.errors`
(``google.rpc.Status`` and the gRPC→HTTP table), :mod:`~gateway.http.headers`
(metadata and deadlines), :mod:`~gateway.http.calls` (one transcoded call),
:mod:`~gateway.http.openapi`, :mod:`~gateway.http.docs`, :mod:`~gateway.http.metrics`,
:mod:`~gateway.http.app` (the ASGI app), :mod:`~gateway.http.server` (uvicorn, embedded).
"""

from __future__ import annotations

from gateway.http.app import GatewayApp, build_app
from gateway.http.ports import (
    CatalogView,
    McpEndpoint,
    MethodInfo,
    RequestGuard,
    SnapshotView,
    UpstreamCalls,
)
from gateway.http.server import HttpServer
from gateway.http.settings import HttpSettings

__all__ = [
    "CatalogView",
    "GatewayApp",
    "HttpServer",
    "HttpSettings",
    "McpEndpoint",
    "MethodInfo",
    "RequestGuard",
    "SnapshotView",
    "UpstreamCalls",
    "build_app",
]
