"""What a hook decided about a call: :class:`Decision`, as the call's events carry it
(``plugmesh.events.v1.HookDecision``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from gateway.mcpfront.hooks.declared import Mode, Phase
from plugmesh.events.v1 import tool_events_pb2

__all__ = ["Decision", "Verdict"]


class Verdict(enum.Enum):
    """A hook's answer, or its failure to answer."""

    ALLOW = tool_events_pb2.HOOK_VERDICT_ALLOW
    DENY = tool_events_pb2.HOOK_VERDICT_DENY
    MODIFY = tool_events_pb2.HOOK_VERDICT_MODIFY
    RESPOND = tool_events_pb2.HOOK_VERDICT_RESPOND
    REPLACE = tool_events_pb2.HOOK_VERDICT_REPLACE
    REDACT = tool_events_pb2.HOOK_VERDICT_REDACT
    FAILED = tool_events_pb2.HOOK_VERDICT_FAILED


@dataclass(frozen=True)
class Decision:
    """One hook's decision on one call.

    Attributes:
        hook: The hook's plugin.
        phase: Where it ran.
        verdict: What it answered, or FAILED.
        applied: Whether the verdict took effect (never under DRY_RUN; not for ALLOW, which
            changes nothing; for FAILED, when failing closed denied the call).
        mode: The hook's mode.
        duration_seconds: How long the gateway waited for it.
        reason: A deny's reason, or what failed and what that counted as.
    """

    hook: str
    phase: Phase
    verdict: Verdict
    applied: bool
    mode: Mode
    duration_seconds: float
    reason: str = ""

    def message(self) -> tool_events_pb2.HookDecision:
        """As the events carry it."""
        decision = tool_events_pb2.HookDecision(
            hook=self.hook,
            phase=self.phase.value,
            verdict=self.verdict.value,
            applied=self.applied,
            mode=self.mode.value,
            reason=self.reason,
        )
        decision.duration.FromNanoseconds(max(0, round(self.duration_seconds * 1e9)))
        return decision
