"""The rate limits of one gateway: the shared counts, the limiter, and the guards of
each door over them, with one lifecycle.

::

    limits = RateLimits(settings, nats_url, replicas=1, metrics_registry=registry)
    await limits.start()        # reaches NATS in the background; calls go uncounted until
    guard = limits.http(auth.http)
    await limits.close()        # safe to call twice
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from gateway.http.ports import RequestGuard
from gateway.ratelimit.exceeded import ExceededEvents
from gateway.ratelimit.for_grpc import Guard, LimitedGrpcGuard
from gateway.ratelimit.for_http import LimitedHttpGuard
from gateway.ratelimit.for_mcp import ToolLimits
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.settings import RateLimitSettings
from gateway.ratelimit.store import JetStreamCounters
from meshkit.tls import MeshTls

__all__ = ["RateLimits"]


class RateLimits:
    """The limits of ``settings``, counted in NATS at ``nats_url``.

    Args:
        settings: The limits.
        nats_url: Where NATS runs.
        replicas: The counter stream's replicas in a NATS cluster.
        nats_tls: The certificate of the NATS connection over TLS; plaintext when None.
        metrics_registry: Where refusals and uncounted calls are counted.
        exceeded: Where the first refusal of each caller, key and window is recorded
            (``rate_limit.exceeded``); nowhere when None.
    """

    def __init__(
        self,
        settings: RateLimitSettings,
        nats_url: str,
        *,
        replicas: int = 1,
        nats_tls: MeshTls | None = None,
        metrics_registry: CollectorRegistry | None = None,
        exceeded: ExceededEvents | None = None,
    ) -> None:
        self.counters = JetStreamCounters(
            nats_url,
            keep_seconds=settings.longest_window_seconds,
            replicas=replicas,
            tls=nats_tls,
        )
        self._exceeded = exceeded
        self.limiter = Limiter(
            settings, self.counters, metrics_registry=metrics_registry, on_exceeded=exceeded
        )

    async def start(self) -> None:
        """Reach NATS in the background; returns at once."""
        await self.counters.start()

    async def close(self) -> None:
        """Record the refusals being recorded, and let go of NATS. Safe to call twice."""
        if self._exceeded is not None:
            await self._exceeded.close()
        await self.counters.close()

    def http(self, guard: RequestGuard) -> LimitedHttpGuard:
        """``guard``, then the limits (429)."""
        return LimitedHttpGuard(guard, self.limiter)

    def grpc(self, guard: Guard) -> LimitedGrpcGuard:
        """``guard``, then the limits (RESOURCE_EXHAUSTED)."""
        return LimitedGrpcGuard(guard, self.limiter)

    def tools(self) -> ToolLimits:
        """The limits of MCP tool calls (a JSON-RPC error)."""
        return ToolLimits(self.limiter)
