"""Rate limits per caller: at most N calls per window for each caller and RPC or MCP
tool, counted in NATS for every gateway replica.

Wiring (the gateway process, :class:`gateway.app.Gateway`)::

    counters = JetStreamCounters(nats_url, keep_seconds=settings.longest_window_seconds)
    limiter = Limiter(settings, counters, metrics_registry=registry)
    build_app(..., guard=LimitedHttpGuard(auth.http, limiter))        # 429, Retry-After
    IngressServer(..., guard=LimitedGrpcGuard(auth.grpc, limiter))    # RESOURCE_EXHAUSTED
    FederatedTools(..., limits=ToolLimits(limiter))                   # JSON-RPC -32029

Modules: :mod:`~gateway.ratelimit.settings` (the limits and the rules),
:mod:`~gateway.ratelimit.limiter` (fixed windows, the decision, failing open),
:mod:`~gateway.ratelimit.store` (the JetStream counter stream),
:mod:`~gateway.ratelimit.refusal` (the status every door sends), and one module per door.
Callers are limited after they are authenticated and authorized: a refused credential is
never counted, and an anonymous caller of a public RPC is counted by its address.
"""

from __future__ import annotations

from gateway.ratelimit.exceeded import ExceededEvents
from gateway.ratelimit.for_grpc import LimitedGrpcGuard
from gateway.ratelimit.for_http import LimitedHttpGuard, TooManyRequests
from gateway.ratelimit.for_mcp import RATE_LIMITED, ToolLimits
from gateway.ratelimit.limiter import Exceeded, Limiter, Subject, Verdict
from gateway.ratelimit.limits import RateLimits
from gateway.ratelimit.settings import Limit, RateLimitSettings
from gateway.ratelimit.store import JetStreamCounters, StoreUnavailable

__all__ = [
    "RATE_LIMITED",
    "Exceeded",
    "ExceededEvents",
    "JetStreamCounters",
    "Limit",
    "LimitedGrpcGuard",
    "LimitedHttpGuard",
    "Limiter",
    "RateLimitSettings",
    "RateLimits",
    "StoreUnavailable",
    "Subject",
    "TooManyRequests",
    "ToolLimits",
    "Verdict",
]
