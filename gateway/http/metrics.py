"""Prometheus metrics of the HTTP side: requests by route, method and status, and latency.

Each app has its own ``CollectorRegistry`` unless it is given one, so that two apps in a
process (tests) do not collide; ``/metrics`` exposes that registry.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "HttpMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class HttpMetrics:
    """Request counters and latency histograms, labelled by route.

    ``route`` is the binding's label (``GET /v1/users/{user_id}``), never the raw path,
    so that the number of series stays bounded; unmatched requests count as
    ``"unmatched"``.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "plugmesh_gateway_http_requests",
            "HTTP requests answered by the gateway.",
            ("route", "method", "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            "plugmesh_gateway_http_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ("route", "method"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # One entry per series, as bounded as they are (routes are labels, not paths).
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, code: int, seconds: float) -> None:
        """Count one answered request."""
        key = (route, method, code)
        series = self._series.get(key)
        if series is None:
            # labels() validates its arguments and takes a lock: once per series, not per
            # request.
            series = (
                self.requests.labels(route, method, str(code)),
                self.latency.labels(route, method),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
