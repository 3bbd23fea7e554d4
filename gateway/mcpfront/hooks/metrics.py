"""The hooks' decisions for ``/metrics``: how often each hook answered what, and how long
the gateway waited for it::

    plugmesh_mcp_hook_decisions_total{hook="secrets-guard",phase="pre",verdict="deny",
                                      applied="true"} 3
    plugmesh_mcp_hook_duration_seconds_bucket{hook="secrets-guard",phase="pre",le="0.005"} 41

For FilterTools, "deny" means the hook hid at least one tool.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.mcpfront.hooks.decision import Decision
from gateway.mcpfront.hooks.declared import Phase

__all__ = ["HookMetrics"]

_PHASES = {Phase.PRE: "pre", Phase.POST: "post", Phase.FILTER: "filter"}
# Hooks answer within their timeout (1 s unless declared): finer buckets than the
# default ones, which start at 5 ms.
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class HookMetrics:
    """Counts and times each hook's decisions in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._decisions = Counter(
            "plugmesh_mcp_hook_decisions",
            "Decisions of tool-call hooks, by hook, phase, verdict and whether it was applied.",
            ("hook", "phase", "verdict", "applied"),
            registry=registry,
        )
        self._duration = Histogram(
            "plugmesh_mcp_hook_duration_seconds",
            "How long the gateway waited for a tool-call hook's answer.",
            ("hook", "phase"),
            buckets=_BUCKETS,
            registry=registry,
        )

    def record(self, decision: Decision) -> None:
        """Count and time one decision."""
        phase = _PHASES[decision.phase]
        applied = "true" if decision.applied else "false"
        verdict = decision.verdict.name.lower()
        self._decisions.labels(decision.hook, phase, verdict, applied).inc()
        self._duration.labels(decision.hook, phase).observe(decision.duration_seconds)
