"""What a probe found, and how many probes the suite made (printed at its end)."""

from __future__ import annotations

import collections
from typing import Any

import grpc

from meshkit.errors import error_info

__all__ = ["DENIED", "PROBES", "THROUGH", "UNAUTHENTICATED", "grpc_outcome", "http_outcome"]

#: Refused for want of (valid) credentials, for want of rights, or let through.
UNAUTHENTICATED, DENIED, THROUGH = "unauthenticated", "denied", "through"
#: Probes made, by the surface probed.
PROBES: collections.Counter[str] = collections.Counter()

_GATEWAY = "gateway.plugmesh"


def http_outcome(response: Any) -> str:
    """What the gateway did with an HTTP request: a 401, its own 403, or let it through
    (whatever the plugin behind then answered)."""
    if response.status_code == 401:
        return UNAUTHENTICATED
    if response.status_code == 403 and _domain(response) == _GATEWAY:
        return DENIED
    return THROUGH


def grpc_outcome(error: grpc.aio.AioRpcError | None, *, domain: str | None = _GATEWAY) -> str:
    """What a gRPC call met: a refusal (from ``domain``, any when None), or nothing."""
    if error is None:
        return THROUGH
    info = error_info(error)
    if domain is not None and (info is None or info.domain != domain):
        return THROUGH
    if error.code() is grpc.StatusCode.UNAUTHENTICATED:
        return UNAUTHENTICATED
    if error.code() is grpc.StatusCode.PERMISSION_DENIED:
        return DENIED
    return THROUGH


def _domain(response: Any) -> str:
    try:
        details = response.json().get("details") or [{}]
    except ValueError:
        return ""
    return str(details[0].get("domain", ""))
