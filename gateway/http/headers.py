"""HTTP headers ↔ gRPC metadata, and the deadline of a request.

Forwarded upstream: ``Grpc-Metadata-<key>`` as ``<key>`` (a ``-bin`` key's value is
base64), and ``traceparent``, ``tracestate``, ``x-request-id`` as they are; a request
without a valid ``traceparent`` gets a new trace (:func:`request_trace`). Nothing else
crosses, and never an identity header (``x-plugmesh-identity*``, ``x-plugmesh-user-*``)
or a reserved ``grpc-*`` key, however it is spelled: only the gateway sets identities.

Sent back: the upstream's initial metadata as ``Grpc-Metadata-<key>`` headers and its
trailing metadata as ``Grpc-Trailer-<key>`` (binary values base64).

The deadline: ``grpc-timeout`` (``<digits><H|M|S|m|u|n>``, as in gRPC) when the client
sends one, else the configured default (none for server streams, which may stay open),
never above the configured maximum.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, MutableMapping
from typing import Any

from gateway.http.errors import BadRequest
from gateway.http.ports import Metadata
from meshkit.tracing import TRACEPARENT, TRACESTATE, TraceContext, new_trace

__all__ = [
    "IDENTITY_PREFIXES",
    "caller_trace",
    "deadline_seconds",
    "forwarded_metadata",
    "request_trace",
    "response_headers",
    "scope_trace",
    "set_scope_trace",
    "with_trace",
]

#: Identity headers only the gateway may set (mirrors gateway.metadata).
IDENTITY_PREFIXES = ("x-plugmesh-identity", "x-plugmesh-user-")
_PREFIX = "grpc-metadata-"
_PASSED = frozenset({"traceparent", "tracestate", "x-request-id"})
_TIMEOUT = re.compile(r"^(\d{1,8})([HMSmun])$")
_UNIT_SECONDS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
_KEY = re.compile(r"^[0-9a-z_.-]+$")

RawHeaders = Iterable[tuple[bytes, bytes]]


def forwarded_metadata(headers: RawHeaders) -> Metadata:
    """The metadata sent upstream for the request headers (ASGI's lowercased pairs).

    Raises:
        BadRequest: a ``-bin`` header is not base64.
    """
    kept: list[tuple[str, str | bytes]] = []
    for raw_name, raw_value in headers:
        name = raw_name.decode("latin-1")
        if name in _PASSED:
            kept.append((name, raw_value.decode("latin-1")))
            continue
        if not name.startswith(_PREFIX):
            continue
        key = name[len(_PREFIX) :]
        if not _KEY.match(key) or key.startswith(("grpc-", *IDENTITY_PREFIXES)):
            continue
        if key.endswith("-bin"):
            try:
                padded = raw_value.strip() + b"=" * (-len(raw_value.strip()) % 4)
                kept.append((key, base64.b64decode(padded, validate=True)))
            except binascii.Error:
                raise BadRequest(
                    f"header {raw_name.decode('latin-1')} must be base64",
                    reason="INVALID_HEADER",
                    metadata={"header": name},
                ) from None
        else:
            kept.append((key, raw_value.decode("latin-1")))
    return tuple(kept)


_SCOPE_TRACE = "plugmesh.trace"


def scope_trace(scope: MutableMapping[str, Any]) -> tuple[TraceContext, bool]:
    """:func:`request_trace` of a request, decided once: every part of the gateway that
    serves it (the access log, the transcoder, the MCP front) sees the same trace."""
    found: tuple[TraceContext, bool] | None = scope.get(_SCOPE_TRACE)
    if found is None:
        found = request_trace(scope["headers"])
        scope[_SCOPE_TRACE] = found
    return found


def set_scope_trace(scope: MutableMapping[str, Any], trace: TraceContext) -> None:
    """Decide the request's trace: ``trace``, a span of the gateway's own
    (:mod:`gateway.http.spans`), which :func:`with_trace` puts in the metadata."""
    scope[_SCOPE_TRACE] = (trace, False)


def request_trace(headers: RawHeaders) -> tuple[TraceContext, bool]:
    """The request's trace context, and whether the caller sent it.

    A valid ``traceparent`` from the caller is the context; otherwise (none, or a
    malformed one) a new trace is, which :func:`with_trace` puts in the metadata.
    """
    found = caller_trace(headers)
    if found is not None:
        return found, True
    return new_trace(), False


def caller_trace(headers: RawHeaders) -> TraceContext | None:
    """The valid trace context the caller sent, if any."""
    parent = state = b""
    for name, value in headers:
        if name == b"traceparent":
            parent = value
        elif name == b"tracestate":
            state = value
    if not parent:
        return None
    return TraceContext.from_headers(
        {TRACEPARENT: parent.decode("latin-1"), TRACESTATE: state.decode("latin-1")}
    )


def with_trace(metadata: Metadata, trace: TraceContext) -> Metadata:
    """``metadata`` with ``trace`` in place of any trace context it had."""
    kept = tuple(m for m in metadata if m[0] not in (TRACEPARENT, TRACESTATE))
    return (*kept, *trace.headers().items())


def deadline_seconds(
    headers: RawHeaders, *, default_seconds: float | None, maximum_seconds: float
) -> float | None:
    """The request's deadline in seconds from now; ``None`` (no deadline) when the client
    sets none and there is no default.

    Raises:
        BadRequest: ``grpc-timeout`` is malformed.
    """
    for name, value in headers:
        if name == b"grpc-timeout":
            match = _TIMEOUT.match(value.decode("latin-1"))
            if match is None:
                raise BadRequest(
                    "header grpc-timeout must be 1 to 8 digits and a unit (H, M, S, m, u, n)",
                    reason="INVALID_HEADER",
                    metadata={"header": "grpc-timeout"},
                )
            requested = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            return min(requested, maximum_seconds)
    return None if default_seconds is None else min(default_seconds, maximum_seconds)


def response_headers(initial: Metadata, trailing: Metadata = ()) -> list[tuple[bytes, bytes]]:
    """HTTP headers carrying an upstream's metadata back to the client."""
    headers: list[tuple[bytes, bytes]] = []
    for prefix, metadata in ((b"grpc-metadata-", initial), (b"grpc-trailer-", trailing)):
        for key, value in metadata:
            lowered = key.lower()
            if lowered.startswith((":", "grpc-")) or not _KEY.match(lowered):
                continue
            encoded = (
                base64.b64encode(value)
                if isinstance(value, bytes)
                else value.encode("latin-1", "replace")
            )
            if b"\r" in encoded or b"\n" in encoded:
                continue
            headers.append((prefix + lowered.encode("ascii"), encoded))
    return headers
