"""The gateway's access log: one JSON line per HTTP request and per call on its gRPC port.

Each line (logger ``plugmesh.access``, message ``access``) says what was called, how it
ended, how long it took, in which trace, and by whom: the verified caller
(``machine:<id>``, ``user:<id>``, ``service:<name>``; ``-`` when none), never a
credential. ``PLUGMESH_GATEWAY_ACCESS_LOG=off`` leaves the lines out.

| field | HTTP | gRPC |
|---|---|---|
| kind | ``http`` | ``grpc`` |
| method | the HTTP method | the full method, ``/package.Service/Method`` |
| route | the binding's template (the metrics label) | the full method |
| path | the path, without its query (a query may carry data) | — |
| status | the HTTP status | the gRPC status code's name |
| duration_ms, trace_id, caller | | |
| request_id | the caller's ``x-request-id`` | the same, from the metadata |
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from meshkit.identity import Identity
from meshkit.tracing import TraceContext

__all__ = ["REQUEST_ID_LIMIT", "AccessLog", "caller_label"]

log = logging.getLogger("plugmesh.access")

#: The longest request id kept (a caller's value, whatever it sent).
REQUEST_ID_LIMIT = 200


def caller_label(identity: Identity | None) -> str:
    """How a line names the caller: its kind and id, ``-`` for none."""
    if identity is None:
        return "-"
    return f"{identity.kind.name.lower()}:{identity.subject}"


@dataclass(frozen=True)
class AccessLog:
    """Writes the access lines, when ``enabled``."""

    enabled: bool = True

    def http(
        self,
        *,
        method: str,
        route: str,
        path: str,
        status: int,
        seconds: float,
        trace: TraceContext | None,
        request_id: str,
        caller: Identity | None,
    ) -> None:
        """The line of one HTTP request."""
        extra = {"kind": "http", "method": method, "route": route, "path": path}
        self._write(extra | {"status": status}, seconds, trace, request_id, caller)

    def grpc(
        self,
        *,
        method: str,
        code: str,
        seconds: float,
        trace: TraceContext | None,
        request_id: str,
        caller: Identity | None,
    ) -> None:
        """The line of one call on the gRPC port."""
        extra = {"kind": "grpc", "method": method, "route": method}
        self._write(extra | {"status": code}, seconds, trace, request_id, caller)

    def _write(
        self,
        extra: dict[str, Any],
        seconds: float,
        trace: TraceContext | None,
        request_id: str,
        caller: Identity | None,
    ) -> None:
        if not self.enabled:
            return
        extra |= {
            "duration_ms": round(seconds * 1000, 3),
            "trace_id": trace.trace_id if trace is not None else "",
            "request_id": request_id[:REQUEST_ID_LIMIT],
            "caller": caller_label(caller),
        }
        log.info("access", extra=extra)
