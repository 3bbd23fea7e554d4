"""The trace an HTTP answer returns to its caller.

Every answer carries ``traceresponse`` (W3C Trace Context level 2): the trace and span
the gateway passed upstream, so a caller that sent no ``traceparent`` can still find its
request's trace; a caller's ``x-request-id`` comes back as it was sent. The request's
access line is :mod:`gateway.access_log`'s.
"""

from __future__ import annotations

from gateway.access_log import REQUEST_ID_LIMIT
from gateway.http.asgi import Scope, Send, adding_headers, header
from meshkit.tracing import TraceContext

__all__ = ["answering_with_trace", "request_id_of"]


def request_id_of(scope: Scope) -> str:
    """The caller's ``x-request-id`` ("" without one)."""
    return (header(scope, b"x-request-id") or b"")[:REQUEST_ID_LIMIT].decode("latin-1")


def answering_with_trace(scope: Scope, send: Send, trace: TraceContext) -> Send:
    """``send``, adding ``traceresponse`` and the echoed ``x-request-id`` to the answer."""
    added = [(b"traceresponse", trace.traceparent.encode())]
    request_id = header(scope, b"x-request-id")
    if request_id:
        added.append((b"x-request-id", request_id[:REQUEST_ID_LIMIT]))
    return adding_headers(send, added)
