"""What the spans of gRPC calls say, on either side (OpenTelemetry's RPC conventions)."""

from __future__ import annotations

from collections.abc import Iterable

import grpc

from meshkit.spans import Attributes, OpenSpan, SpanKind, SpanRecorder
from meshkit.tracing import TRACEPARENT, TRACESTATE, TraceContext

__all__ = ["UNTRACED", "end_rpc_span", "metadata_trace", "start_rpc_span"]

#: Calls of the mesh's plumbing, made all the time and on behalf of no request: no span
#: (health checks, reflection, every process's lease renewals and registry watch).
UNTRACED = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.",
    "/plugmesh.registry.v1.RegistryService/RenewLease",
    "/plugmesh.registry.v1.RegistryService/WatchServices",
)

#: Codes that fail a server span; the others are the client's doing (the conventions).
_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
_CODES = {code.name: code.value[0] for code in grpc.StatusCode}


def metadata_trace(metadata: Iterable[tuple[str, str | bytes]]) -> TraceContext | None:
    """The trace context the metadata carries, if valid."""
    found: dict[str, str] = {}
    for key, value in metadata:
        if key in (TRACEPARENT, TRACESTATE) and isinstance(value, str):
            found[key] = value
    return TraceContext.from_headers(found)


def start_rpc_span(
    spans: SpanRecorder, method: str, kind: SpanKind, parent: TraceContext | None
) -> OpenSpan:
    """The span of a call of ``method`` (``/pkg.Service/Method``); a server's parent is
    remote, a client's is the caller's own."""
    service, _, name = method[1:].partition("/")
    attributes: Attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    remote = kind is SpanKind.SERVER
    return spans.start(method[1:], kind, parent, remote=remote, attributes=attributes)


def end_rpc_span(span: OpenSpan, code: str, kind: SpanKind) -> None:
    """End a call's span with its status code's name."""
    failed = code != "OK" and (kind is SpanKind.CLIENT or code in _SERVER_ERRORS)
    attributes = {"rpc.grpc.status_code": _CODES.get(code, _CODES["UNKNOWN"])}
    span.end(error=code if failed else None, attributes=attributes)
