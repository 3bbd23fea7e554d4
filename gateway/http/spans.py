"""The server span of an HTTP request, when traces are on (:mod:`meshkit.spans`).

The span continues the caller's ``traceparent`` (or starts a trace) and is the request's
trace from then on (:func:`gateway.http.headers.set_scope_trace`): the access line, the
``traceresponse`` header, the upstream call (a client span of it) and the MCP front's tool
calls all see its context. Probes and scrapes (``/healthz``, ``/readyz``, ``/metrics``)
are no spans.
"""

from __future__ import annotations

from gateway.http.asgi import Scope
from gateway.http.headers import caller_trace, set_scope_trace
from meshkit.spans import OpenSpan, SpanKind, SpanRecorder

__all__ = ["end_request_span", "start_request_span"]

_UNTRACED = frozenset({"/healthz", "/readyz", "/metrics"})


def start_request_span(spans: SpanRecorder, scope: Scope) -> OpenSpan | None:
    """Start the request's span and make it the request's trace; ``None`` for a probe."""
    if scope["path"] in _UNTRACED:
        return None
    method: str = scope["method"]
    attributes = {
        "http.request.method": method,
        "url.path": scope["path"],
        "url.scheme": scope.get("scheme", "http"),
    }
    span = spans.start(
        method, SpanKind.SERVER, caller_trace(scope["headers"]), remote=True, attributes=attributes
    )
    set_scope_trace(scope, span.trace)
    return span


def end_request_span(span: OpenSpan, method: str, label: str, status: int) -> None:
    """End the request's span: named after its route (``POST /v1/users``) when one
    matched (``label``, the metrics label: a route's ``GET /v1/users/{user_id}``, the MCP
    front's ``/mcp``, ``unmatched``), a failure when the gateway answered 5xx."""
    attributes: dict[str, str | int] = {"http.response.status_code": status}
    name = method
    route = label.split(" ", 1)[-1]
    if route.startswith("/"):
        attributes["http.route"] = route
        name = f"{method} {route}"
    error = str(status) if status >= 500 else None
    span.end(error=error, attributes=attributes, name=name)
