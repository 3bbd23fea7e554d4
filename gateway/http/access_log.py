"""One JSON line per HTTP request the gateway answers, and the trace returned to its caller.

Each line (logger ``plugmesh.access``, message ``access``) carries the method, the route
(its template, as the metrics label it), the path without its query (a query may carry
data), the status, the duration in milliseconds, the trace id, the caller's
``x-request-id`` and the verified caller (``machine:<id>``, ``user:<id>``; ``-`` when
none), never a credential. ``PLUGMESH_GATEWAY_ACCESS_LOG=off`` leaves the lines out.

Every answer carries ``traceresponse`` (W3C Trace Context level 2): the trace and span the
gateway passed upstream, so a caller that sent no ``traceparent`` can still find its
request's trace; a caller's ``x-request-id`` comes back as it was sent.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gateway.http.asgi import Message, Scope, Send, header
from meshkit.identity import Identity
from meshkit.tracing import TraceContext

__all__ = ["AccessLog", "answering_with_trace", "caller_label"]

log = logging.getLogger("plugmesh.access")

_REQUEST_ID_LIMIT = 200


def caller_label(identity: Identity | None) -> str:
    """How a line names the caller: its kind and id, ``-`` for none."""
    if identity is None:
        return "-"
    return f"{identity.kind.name.lower()}:{identity.subject}"


def answering_with_trace(scope: Scope, send: Send, trace: TraceContext) -> Send:
    """``send``, adding ``traceresponse`` and the echoed ``x-request-id`` to the answer."""
    added = [(b"traceresponse", trace.traceparent.encode())]
    request_id = header(scope, b"x-request-id")
    if request_id:
        added.append((b"x-request-id", request_id[:_REQUEST_ID_LIMIT]))

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", ()), *added])
        await send(message)

    return sending


@dataclass(frozen=True)
class AccessLog:
    """Writes the access lines, when ``enabled``."""

    enabled: bool = True

    def record(
        self,
        scope: Scope,
        *,
        route: str,
        status: int,
        seconds: float,
        trace: TraceContext,
        caller: Identity | None,
    ) -> None:
        if not self.enabled:
            return
        request_id = (header(scope, b"x-request-id") or b"")[:_REQUEST_ID_LIMIT]
        log.info(
            "access",
            extra={
                "kind": "http",
                "method": scope["method"],
                "route": route,
                "path": scope["path"],
                "status": status,
                "duration_ms": round(seconds * 1000, 3),
                "trace_id": trace.trace_id,
                "request_id": request_id.decode("latin-1"),
                "caller": caller_label(caller),
            },
        )
