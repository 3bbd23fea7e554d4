"""Where the MCP front records its tool calls: the :class:`CallLog` seam.

:class:`~gateway.mcpfront.federated.FederatedTools` tells a call log of every
``tools/call`` twice: :meth:`CallLog.started` before the call is forwarded, and
:meth:`CallLog.finished` once with how it ended: :class:`Completed` (the tool answered,
perhaps with ``isError``) or :class:`Failed` (no result: unknown, denied, or the upstream
failed). The gateway's log writes them as ``tool.call.*`` events through its outbox
(:mod:`~gateway.mcpfront.call_events`); :data:`NO_CALL_LOG` records nothing.

The outcomes of a failed call are made here, from what decided it: :func:`not_found`,
:func:`denied` (naming the deciding rule), :func:`failure_of` an upstream error,
:func:`cancelled`, :func:`broken`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import grpc

from gateway.mcpfront.hooks.decision import Decision as HookDecision
from gateway.mcpfront.hooks.declared import Phase
from gateway.mcpfront.toolbox import Caller
from gateway.mcpfront.upstream_errors import (
    UnknownTool,
    UpstreamDied,
    UpstreamError,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamRejected,
    UpstreamTimeout,
)
from meshkit.permissions import Decision, Reason
from meshkit.tracing import TraceContext

__all__ = [
    "NO_CALL_LOG",
    "CallLog",
    "CallNotRecorded",
    "Completed",
    "Failed",
    "Outcome",
    "ToolCall",
    "admin_only",
    "broken",
    "cancelled",
    "denied",
    "failure_of",
    "hidden",
    "hook_denied",
    "not_found",
]


@dataclass(frozen=True)
class ToolCall:
    """One ``tools/call`` as the log records it.

    Attributes:
        call_id: Shared by the call's started and finished records.
        caller: Who calls.
        server: The upstream server; "" when the name led to none.
        tool: The tool's own name on ``server`` (the name the caller used when it led
            to no server).
        arguments: The call's arguments, as the caller sent them.
        session_id: The caller's MCP session, "" when it has none.
        trace: The call's trace context.
        decisions: What the hooks decided, in the order they ran (the started record
            has the pre-hooks', the finished one every hook's).
    """

    call_id: str
    caller: Caller
    server: str
    tool: str
    arguments: Mapping[str, Any] = field(default_factory=dict)
    session_id: str = ""
    trace: TraceContext | None = None
    decisions: tuple[HookDecision, ...] = ()


@dataclass(frozen=True)
class Completed:
    """The tool answered; ``is_error`` is its result's ``isError``."""

    is_error: bool = False


@dataclass(frozen=True)
class Failed:
    """The call produced no result.

    Attributes:
        code: What kind of failure, as a gRPC status code.
        reason: Why, UPPER_SNAKE_CASE, stable for programs to match on.
        message: For people.
        metadata: What a program needs to know more (the server, the deciding rule, …).
    """

    code: grpc.StatusCode
    reason: str
    message: str
    metadata: Mapping[str, str] = field(default_factory=dict)


Outcome: TypeAlias = Completed | Failed


class CallNotRecorded(Exception):
    """The call log could not record a call (its store failed); the cause is chained."""


class CallLog(Protocol):
    """Records each tool call: once when it starts, once when it ends."""

    async def started(self, call: ToolCall) -> None:
        """Record, durably, that ``call`` starts.

        Raises:
            CallNotRecorded: It could not be recorded.
        """
        ...

    async def finished(self, call: ToolCall, outcome: Outcome, *, duration_seconds: float) -> None:
        """Record how ``call`` ended, ``duration_seconds`` after it started.

        Raises:
            CallNotRecorded: It could not be recorded.
        """
        ...


class _NoCallLog:
    """Records nothing."""

    async def started(self, call: ToolCall) -> None:
        return None

    async def finished(self, call: ToolCall, outcome: Outcome, *, duration_seconds: float) -> None:
        return None


#: A call log that records nothing (a gateway's default only in tests).
NO_CALL_LOG: CallLog = _NoCallLog()

_NO_RULE = "no rule allows it"


def not_found(call: ToolCall, name: str) -> Failed:
    """No tool ``name`` (the name the caller used) in the caller's view."""
    metadata = {"name": name, **({"server": call.server} if call.server else {})}
    return Failed(grpc.StatusCode.NOT_FOUND, "TOOL_NOT_FOUND", f"no tool {name!r}", metadata)


def denied(call: ToolCall, decision: Decision) -> Failed:
    """The caller's permissions forbid the call; ``decision`` names what decided it: a
    deny rule (its pattern, effect and position), or no rule allowing it."""
    target = f"{call.server}/{call.tool}"
    rule = decision.rule
    if decision.reason is Reason.RULE and rule is not None:
        metadata = {
            "server": call.server,
            "tool": call.tool,
            "rule": f"{rule.effect.value} {rule.pattern}",
            "rule_effect": rule.effect.value,
            "rule_pattern": rule.pattern,
            "rule_index": str(decision.rule_index),
        }
        message = f"{target}: denied by rule {decision.rule_index} ({metadata['rule']})"
    else:
        metadata = {"server": call.server, "tool": call.tool, "rule": _NO_RULE}
        message = f"{target}: {_NO_RULE}"
    return Failed(grpc.StatusCode.PERMISSION_DENIED, "TOOL_CALL_DENIED", message, metadata)


def hook_denied(call: ToolCall, decision: HookDecision) -> Failed:
    """A hook denied the call, or its result (failing closed counts as a deny)."""
    phase = "pre" if decision.phase is Phase.PRE else "post"
    metadata = {
        "server": call.server,
        "tool": call.tool,
        "hook": decision.hook,
        "phase": phase,
        "verdict": decision.verdict.name,
    }
    message = f"{call.server}/{call.tool}: denied by hook {decision.hook!r}: {decision.reason}"
    return Failed(grpc.StatusCode.PERMISSION_DENIED, "TOOL_CALL_DENIED_BY_HOOK", message, metadata)


def admin_only(call: ToolCall) -> Failed:
    """The tool is a plugin's RPC for admins only, and the caller is not one."""
    metadata = {"server": call.server, "tool": call.tool, "rule": "for admins only"}
    message = f"{call.server}/{call.tool}: for admins only"
    return Failed(grpc.StatusCode.PERMISSION_DENIED, "TOOL_CALL_DENIED", message, metadata)


def hidden(call: ToolCall) -> Failed:
    """A FilterTools hook hides the tool from the caller: to them it does not exist."""
    metadata = {"server": call.server, "tool": call.tool}
    message = f"{call.server}/{call.tool}: hidden from the caller by a hook"
    return Failed(grpc.StatusCode.PERMISSION_DENIED, "TOOL_HIDDEN_BY_HOOK", message, metadata)


# JSON-RPC error codes of an upstream's own refusal, as status codes.
_REJECTED = {
    -32700: grpc.StatusCode.INTERNAL,  # it could not parse what the gateway sent
    -32600: grpc.StatusCode.INVALID_ARGUMENT,
    -32601: grpc.StatusCode.UNIMPLEMENTED,
    -32602: grpc.StatusCode.INVALID_ARGUMENT,
    -32603: grpc.StatusCode.INTERNAL,
    -32001: grpc.StatusCode.DEADLINE_EXCEEDED,  # the SDKs' request timeout
    -32800: grpc.StatusCode.CANCELLED,  # the LSP's RequestCancelled
}


def failure_of(error: UpstreamError) -> Failed:
    """How a call through an upstream failed, from the error that says so."""
    about = {"server": error.server, "tool": error.tool}
    message = str(error)
    if isinstance(error, UnknownTool):
        return Failed(grpc.StatusCode.NOT_FOUND, "TOOL_NOT_FOUND", message, about)
    if isinstance(error, UpstreamTimeout):
        timeout = {**about, "timeout_seconds": f"{error.timeout_seconds:g}"}
        return Failed(grpc.StatusCode.DEADLINE_EXCEEDED, "UPSTREAM_TIMEOUT", message, timeout)
    if isinstance(error, UpstreamNotReady):
        state = {**about, "state": error.state}
        return Failed(grpc.StatusCode.UNAVAILABLE, "UPSTREAM_NOT_READY", message, state)
    if isinstance(error, UpstreamDied):
        return Failed(grpc.StatusCode.UNAVAILABLE, "UPSTREAM_DIED", message, about)
    if isinstance(error, UpstreamProtocolError):
        return Failed(grpc.StatusCode.INTERNAL, "UPSTREAM_PROTOCOL_ERROR", message, about)
    if isinstance(error, UpstreamRejected):
        code = _REJECTED.get(error.code, grpc.StatusCode.UNKNOWN)
        rejected = {**about, "jsonrpc_code": str(error.code)}
        return Failed(code, "UPSTREAM_REJECTED", message, rejected)
    return Failed(grpc.StatusCode.UNKNOWN, "UPSTREAM_ERROR", message, about)


def cancelled(call: ToolCall) -> Failed:
    """The caller cancelled the call, or went away, before it ended."""
    about = {"server": call.server, "tool": call.tool}
    return Failed(grpc.StatusCode.CANCELLED, "TOOL_CALL_CANCELLED", "the call was cancelled", about)


def broken(call: ToolCall, error: BaseException) -> Failed:
    """The gateway failed in an unexpected way (the cause is in its log)."""
    about = {"server": call.server, "tool": call.tool, "error": type(error).__name__}
    return Failed(grpc.StatusCode.INTERNAL, "INTERNAL", "the gateway failed the call", about)
