"""The hooks of one tool call, run in order: :class:`HookChain`.

::

    chain = HookChain(lambda: declared_hooks(catalog.snapshot), transport)
    before = await chain.before(call, arguments)       # pre-hooks
    if before.denied: ...                               # the caller gets before.result
    elif before.response is not None: result = before.response
    else: result = await upstream(before.arguments)
    after = await chain.after(call, before, result, duration_seconds)  # post-hooks
    hidden = await chain.hidden(caller, [(server, tool), ...])          # FilterTools

Pre-hooks run in ascending priority, each seeing the arguments as the earlier ones left
them; the first deny or respond ends the chain. Post-hooks run in descending priority on
the result (the upstream's, or a pre-hook's response), each seeing it as the later ones
left it; the first deny ends the chain. A hook that fails (an error, no serving instance,
an answer that cannot be applied) or passes its timeout counts as allowing under
FAIL_OPEN and as denying under FAIL_CLOSED. A DRY_RUN hook's verdict is computed and
recorded, never applied, and its attributes are not passed on. Every hook that ran
leaves a :class:`~gateway.mcpfront.hooks.decision.Decision`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import grpc
import mcp.types as types
from google.protobuf import message

from gateway.mcpfront.hooks.decision import Decision, Verdict
from gateway.mcpfront.hooks.declared import FailureMode, Hook, Mode, Phase
from gateway.mcpfront.hooks.required import HookAbsent
from gateway.mcpfront.hooks.wire import (
    BadAnswer,
    HookedCall,
    caller_message,
    checked_result,
    error_result,
    from_struct,
    redacted,
    to_struct,
    tool_message,
)
from gateway.mcpfront.toolbox import Caller
from plugmesh.mcp.v1 import hooks_pb2

__all__ = ["NO_HOOKS", "After", "Before", "HookChain", "HookTransport"]

log = logging.getLogger(__name__)

Answer = TypeVar("Answer", bound=message.Message)


class HookTransport(Protocol):
    """How a hook is called: its ``phase`` method, with ``request``, on one of its
    serving instances. Raises whatever the call raises; the chain bounds it in time."""

    async def call(
        self, hook: Hook, phase: Phase, request: message.Message, answer: type[Answer]
    ) -> Answer: ...


@dataclass(frozen=True)
class Before:
    """What the pre-hooks made of a call.

    Attributes:
        arguments: The arguments as the hooks left them.
        attributes: What the hooks set for those after them.
        decisions: Each pre-hook's decision, in order.
        denied: The applied deny that ended the chain, if one did.
        response: The result a hook answered in the upstream's place, if one did.
    """

    arguments: dict[str, Any]
    attributes: dict[str, str] = field(default_factory=dict)
    decisions: tuple[Decision, ...] = ()
    denied: Decision | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class After:
    """What the post-hooks made of a result.

    Attributes:
        result: The result as the hooks left it (an error result when one denied it).
        decisions: Each post-hook's decision, in order.
        denied: The applied deny that ended the chain, if one did.
    """

    result: Mapping[str, Any]
    decisions: tuple[Decision, ...] = ()
    denied: Decision | None = None


class HookChain:
    """Runs the hooks the mesh declares.

    Args:
        hooks: The hooks now declared, by ascending priority (asked on every call).
        transport: How a hook is called.
        recorded: Told of every decision (the metrics).
    """

    def __init__(
        self,
        hooks: Callable[[], Sequence[Hook]],
        transport: HookTransport,
        *,
        recorded: Callable[[Decision], None] = lambda _: None,
    ) -> None:
        self._hooks = hooks
        self._transport = transport
        self._recorded = recorded

    @property
    def filtering(self) -> bool:
        """Whether any hook takes part in listings."""
        return any(hook.runs(Phase.FILTER) for hook in self._hooks())

    def any_for(self, server: str, tool: str) -> bool:
        """Whether any hook runs, in any phase, for ``tool`` on ``server``."""
        return any(
            hook.applies_to(server, tool) and any(hook.runs(phase) for phase in Phase)
            for hook in self._hooks()
        )

    def active(self, phase: Phase, server: str, tool: str) -> list[Hook]:
        """The hooks that run in ``phase`` for ``tool`` on ``server``, in order."""
        hooks = [h for h in self._hooks() if h.runs(phase) and h.applies_to(server, tool)]
        return hooks[::-1] if phase is Phase.POST else hooks

    async def before(self, call: HookedCall, arguments: Mapping[str, Any]) -> Before:
        """Run the pre-hooks on ``call`` with ``arguments``."""
        hooks = self.active(Phase.PRE, call.server, call.tool)
        current, attributes = dict(arguments), dict[str, str]()
        decisions: list[Decision] = []
        for hook in hooks:
            request = hooks_pb2.PreToolCallRequest(call=call.message(current, attributes))
            began = time.monotonic()
            try:
                answer = await self._ask(hook, Phase.PRE, request, hooks_pb2.PreToolCallResponse)
                verdict, reason, changed = _pre_verdict(answer, call.definition)
            except Exception as exc:  # any failure counts as the hook's
                decision = self._noted(decisions, _failed(hook, Phase.PRE, exc, began))
                if decision.applied:
                    return Before(current, attributes, tuple(decisions), denied=decision)
                continue
            enforced = hook.mode is Mode.ENFORCE
            applied = enforced and verdict is not Verdict.ALLOW
            decided = _decided(hook, Phase.PRE, verdict, applied, began, reason)
            decision = self._noted(decisions, decided)
            if not enforced:
                continue
            attributes.update(answer.attributes)
            if verdict is Verdict.DENY:
                return Before(current, attributes, tuple(decisions), denied=decision)
            if verdict is Verdict.RESPOND:
                return Before(current, attributes, tuple(decisions), response=changed)
            if verdict is Verdict.MODIFY and changed is not None:
                current = changed
        return Before(current, attributes, tuple(decisions))

    async def after(
        self,
        call: HookedCall,
        before: Before,
        result: Mapping[str, Any],
        duration_seconds: float,
    ) -> After:
        """Run the post-hooks on ``result`` of ``call`` (made as ``before`` says)."""
        hooks = self.active(Phase.POST, call.server, call.tool)
        if not hooks:
            return After(result)
        current, attributes = dict(result), dict(before.attributes)
        decisions: list[Decision] = []
        for hook in hooks:
            request = hooks_pb2.PostToolCallRequest(
                call=call.message(before.arguments, attributes),
                result=to_struct(current),
            )
            request.duration.FromNanoseconds(max(0, round(duration_seconds * 1e9)))
            began = time.monotonic()
            try:
                answer = await self._ask(hook, Phase.POST, request, hooks_pb2.PostToolCallResponse)
                verdict, reason, changed = _post_verdict(answer, current, call.definition)
            except Exception as exc:  # any failure counts as the hook's
                decision = self._noted(decisions, _failed(hook, Phase.POST, exc, began))
                if decision.applied:
                    denial = error_result(decision.reason, hook.name)
                    return After(denial, tuple(decisions), decision)
                continue
            enforced = hook.mode is Mode.ENFORCE
            applied = enforced and verdict is not Verdict.ALLOW
            decided = _decided(hook, Phase.POST, verdict, applied, began, reason)
            decision = self._noted(decisions, decided)
            if not enforced:
                continue
            attributes.update(answer.attributes)
            if verdict is Verdict.DENY:
                return After(error_result(reason, hook.name), tuple(decisions), decision)
            if changed is not None:
                current = changed
        return After(current, tuple(decisions))

    async def hidden(
        self, caller: Caller, tools: Sequence[tuple[str, types.Tool]], session_id: str = ""
    ) -> frozenset[tuple[str, str]]:
        """The ``(server, tool)`` of ``tools`` that the FilterTools hooks hide from
        ``caller``: each hook is asked, at once, about the tools it applies to."""
        asked = []
        for hook in self._hooks():
            if not hook.runs(Phase.FILTER):
                continue
            mine = [(s, t) for s, t in tools if hook.applies_to(s, t.name)]
            if mine:
                asked.append(self._filter(hook, caller, mine, session_id))
        hidden: set[tuple[str, str]] = set()
        for found in await asyncio.gather(*asked):
            hidden |= found
        return frozenset(hidden)

    async def _filter(
        self,
        hook: Hook,
        caller: Caller,
        tools: Sequence[tuple[str, types.Tool]],
        session_id: str,
    ) -> set[tuple[str, str]]:
        request = hooks_pb2.FilterToolsRequest(
            caller=caller_message(caller),
            tools=[
                hooks_pb2.ServerTool(server=s, tool=tool_message(s, t.name, t)) for s, t in tools
            ],
            session_id=session_id,
        )
        offered = {f"{s}/{t.name}": (s, t.name) for s, t in tools}
        began = time.monotonic()
        try:
            answer = await self._ask(hook, Phase.FILTER, request, hooks_pb2.FilterToolsResponse)
        except Exception as exc:  # any failure counts as the hook's
            decision = _failed(hook, Phase.FILTER, exc, began)
            self._recorded(decision)
            log.warning(
                "a FilterTools hook failed",
                extra={"hook": hook.name, "error": _describe(exc), "hides": decision.applied},
            )
            return set(offered.values()) if decision.applied else set()
        hidden = {offered[name] for name in answer.hidden if name in offered}
        # For a listing, a deny is hiding at least one tool.
        verdict = Verdict.DENY if hidden else Verdict.ALLOW
        applied = bool(hidden) and hook.mode is Mode.ENFORCE
        self._recorded(_decided(hook, Phase.FILTER, verdict, applied, began, ""))
        if hook.mode is Mode.DRY_RUN:
            if hidden:
                log.info(
                    "a DRY_RUN FilterTools hook would hide tools",
                    extra={"hook": hook.name, "tools": sorted(f"{s}/{t}" for s, t in hidden)},
                )
            return set()
        return hidden

    def _noted(self, decisions: list[Decision], decision: Decision) -> Decision:
        """``decision``, kept with the call's and recorded (the metrics)."""
        decisions.append(decision)
        self._recorded(decision)
        return decision

    async def _ask(
        self, hook: Hook, phase: Phase, request: message.Message, answer: type[Answer]
    ) -> Answer:
        if hook.absent:
            raise HookAbsent(hook.name)
        async with asyncio.timeout(hook.timeout_seconds):
            return await self._transport.call(hook, phase, request, answer)


class _NoTransport:
    async def call(
        self, hook: Hook, phase: Phase, request: message.Message, answer: type[Answer]
    ) -> Answer:
        raise AssertionError("no hooks, no calls")


#: A chain without hooks.
NO_HOOKS = HookChain(tuple, _NoTransport())


def _pre_verdict(
    answer: hooks_pb2.PreToolCallResponse, tool: types.Tool | None
) -> tuple[Verdict, str, dict[str, Any] | None]:
    """The verdict, a deny's reason, and the arguments or result it brings."""
    which = answer.WhichOneof("verdict")
    if which == "deny":
        return Verdict.DENY, answer.deny.reason or "denied by a hook", None
    if which == "modify":
        return Verdict.MODIFY, "", from_struct(answer.modify.arguments)
    if which == "respond":
        return Verdict.RESPOND, "", checked_result(from_struct(answer.respond.result), tool)
    return Verdict.ALLOW, "", None


def _post_verdict(
    answer: hooks_pb2.PostToolCallResponse, result: Mapping[str, Any], tool: types.Tool | None
) -> tuple[Verdict, str, dict[str, Any] | None]:
    """The verdict, a deny's reason, and the result it brings."""
    which = answer.WhichOneof("verdict")
    if which == "deny":
        return Verdict.DENY, answer.deny.reason or "denied by a hook", None
    if which == "replace":
        return Verdict.REPLACE, "", checked_result(from_struct(answer.replace.result), tool)
    if which == "redact":
        return Verdict.REDACT, "", checked_result(redacted(result, answer.redact), tool)
    return Verdict.ALLOW, "", None


def _decided(
    hook: Hook, phase: Phase, verdict: Verdict, applied: bool, began: float, reason: str
) -> Decision:
    return Decision(hook.name, phase, verdict, applied, hook.mode, time.monotonic() - began, reason)


def _failed(hook: Hook, phase: Phase, exc: Exception, began: float) -> Decision:
    """The decision of a hook that failed: a deny when it fails closed and enforces."""
    closed = hook.failure_mode is FailureMode.FAIL_CLOSED
    applied = closed and hook.mode is Mode.ENFORCE
    counted = "a deny" if closed else "an allow"
    reason = f"hook {hook.name!r} failed ({_describe(exc)}); counted as {counted}"
    if applied:
        log.warning("a hook failed closed", extra={"hook": hook.name, "error": _describe(exc)})
    return Decision(
        hook.name, phase, Verdict.FAILED, applied, hook.mode, time.monotonic() - began, reason
    )


def _describe(exc: Exception) -> str:
    """What went wrong, in a few words, without the hook's own text when it is an
    error of the gRPC call (its code says enough)."""
    if isinstance(exc, TimeoutError):
        return "no answer within its timeout"
    if isinstance(exc, BadAnswer | HookAbsent):
        return str(exc)
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"gRPC {exc.code().name}"
    return type(exc).__name__
