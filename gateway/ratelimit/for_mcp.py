"""Rate limits of MCP tool calls: the :class:`~gateway.mcpfront.federated.CallLimits` of
the MCP front.

The key is ``<server>/<tool>`` (the tool's own name, whichever view, ``/mcp`` or
``/mcp/s/<server>``, calls it). A refused call is not forwarded; the caller gets the
JSON-RPC error :data:`RATE_LIMITED` (``-32029``, in the range JSON-RPC leaves to
servers; "429" in its digits), whose ``data`` carries ``reason: RATE_LIMITED``,
``retryAfterSeconds``, the limit, the server and the tool; the call is recorded as
``tool.call.failed`` RESOURCE_EXHAUSTED with reason ``TOOL_CALL_RATE_LIMITED``.
"""

from __future__ import annotations

import grpc
from mcp import MCPError

from gateway.mcpfront.call_log import Failed
from gateway.mcpfront.federated import LimitRefusal
from gateway.mcpfront.toolbox import Caller, CallerKind
from gateway.ratelimit.limiter import Limiter, Subject
from gateway.ratelimit.refusal import REASON, message_of

__all__ = ["RATE_LIMITED", "ToolLimits"]

#: The JSON-RPC code of a call over its caller's rate limit.
RATE_LIMITED = -32029

_KINDS = {CallerKind.PERSON: "user", CallerKind.MACHINE: "machine"}


class ToolLimits:
    """Counts tool calls with ``limiter``."""

    def __init__(self, limiter: Limiter) -> None:
        self._limiter = limiter

    async def refusal(self, caller: Caller, server: str, tool: str) -> LimitRefusal | None:
        """Count a call of ``server/tool`` by ``caller``; the refusal when it is over."""
        key = f"{server}/{tool}"
        subject = Subject(f"{_KINDS[caller.kind]}:{caller.id}", admin=caller.admin)
        verdict = await self._limiter.check(subject, key, protocol="mcp")
        if verdict.admitted:
            return None
        message = message_of(key, verdict)
        about = {"server": server, "tool": tool, "limit": str(verdict.limit)}
        outcome = Failed(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TOOL_CALL_RATE_LIMITED",
            message,
            {**about, "retry_after_seconds": str(verdict.retry_after_seconds)},
        )
        data = {"reason": REASON, "retryAfterSeconds": verdict.retry_after_seconds, **about}
        return LimitRefusal(outcome, MCPError(RATE_LIMITED, message, data))
