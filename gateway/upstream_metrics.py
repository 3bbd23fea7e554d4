"""How the gateway spread its calls over the plugins' instances, for ``/metrics``.

The counts live in :class:`~gateway.upstream.Upstreams` (one dict increment per call);
this collector reads them only when the metrics are scraped::

    plugmesh_gateway_upstream_calls_served_total{service="users",address="10.0.0.7:50061"} 42
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from gateway.upstream import Upstreams

__all__ = ["UpstreamCollector"]


class UpstreamCollector(Collector):
    """Unary calls each instance answered with OK through the gateway, by service."""

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    def collect(self) -> Iterator[CounterMetricFamily]:
        """The counts as they are now."""
        family = CounterMetricFamily(
            "plugmesh_gateway_upstream_calls_served",
            "Unary calls a plugin instance answered with OK through the gateway.",
            labels=("service", "address"),
        )
        for (service, address), count in sorted(self._upstreams.served_by_service().items()):
            family.add_metric((service, address), count)
        yield family
