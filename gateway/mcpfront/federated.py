"""The upstream servers' tools as the MCP front serves them: :class:`FederatedTools`.

The :class:`~gateway.mcpfront.toolbox.Toolbox` over the
:class:`~gateway.mcpfront.federation.Upstreams` manager, shaped by each caller's
permissions::

    upstreams = Upstreams(ConnectionSettings(child_environment=...))
    front = McpFront(FederatedTools(upstreams, calls=call_log), guard, settings)
    upstreams.add_listener(lambda: spawn(front.tools_changed()))

A caller sees (``tools/list``) and calls (``tools/call``) only the tools its permissions
allow on ``<server>/<tool>`` (the toolkit's :func:`meshkit.permissions.decide`: allow and
deny globs, deny wins, the admin flag). A tool the caller may not call is unknown to
them, answered exactly as a tool that does not exist. An upstream's failure becomes a
JSON-RPC error naming the server; its own JSON-RPC error passes through as it is.

Every call is recorded in a :class:`~gateway.mcpfront.call_log.CallLog`: started before
it is forwarded (a call that cannot be recorded is refused, not made), then finished
with its outcome, whether it completed, failed upstream, named no tool, was denied (the
deciding rule recorded, the caller told nothing more than for an unknown tool) or was
cancelled.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import mcp.types as types
from mcp import MCPError

from gateway.mcpfront.call_log import (
    NO_CALL_LOG,
    CallLog,
    CallNotRecorded,
    Completed,
    Failed,
    Outcome,
    ToolCall,
    admin_only,
    broken,
    cancelled,
    denied,
    failure_of,
    hidden,
    hook_denied,
    not_found,
)
from gateway.mcpfront.federation import Upstreams
from gateway.mcpfront.hooks import NO_HOOKS, HookChain, HookedCall, Phase
from gateway.mcpfront.hooks.wire import error_result
from gateway.mcpfront.plugin_tools import PluginTools
from gateway.mcpfront.tool_servers import ToolServers
from gateway.mcpfront.toolbox import Caller, ListedTool, Progress, ToolResult
from gateway.mcpfront.upstream_errors import (
    UnknownTool,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from meshkit.permissions import decide
from meshkit.tracing import current_trace

__all__ = ["UPSTREAM_UNAVAILABLE", "CallLimits", "FederatedTools", "LimitRefusal"]

log = logging.getLogger(__name__)

#: The JSON-RPC code of a call whose server is down, died during the call, or answered
#: what is not MCP (the JSON-RPC "internal error": the gateway could not complete it).
UPSTREAM_UNAVAILABLE = types.INTERNAL_ERROR


@dataclass(frozen=True)
class LimitRefusal:
    """A call over its caller's rate limit: what is recorded, and what the caller gets."""

    outcome: Failed
    error: MCPError


class CallLimits(Protocol):
    """Rate limits of tool calls (:class:`gateway.ratelimit.ToolLimits`)."""

    async def refusal(self, caller: Caller, server: str, tool: str) -> LimitRefusal | None:
        """Count a call of ``server/tool`` by ``caller``; None when it may go on."""
        ...


class FederatedTools:
    """The tools of every READY upstream server and of the plugins, per caller.

    Args:
        upstreams: The servers; the caller of :meth:`Upstreams.apply` keeps them current.
        calls: Where each call is recorded; nowhere by default.
        hooks: The plugins' hooks into calls and listings; none by default.
        plugins: The plugins' RPCs offered as tools; none by default.
        limits: The callers' rate limits; none by default. A call is counted once the
            caller may call the tool, before any hook sees it.
    """

    def __init__(
        self,
        upstreams: Upstreams,
        *,
        calls: CallLog = NO_CALL_LOG,
        hooks: HookChain = NO_HOOKS,
        plugins: PluginTools | None = None,
        limits: CallLimits | None = None,
    ) -> None:
        self._servers = ToolServers(upstreams, plugins)
        self._limits = limits
        self._calls = calls
        self._hooks = hooks

    def has_server(self, server: str) -> bool:
        """Whether ``server`` is an upstream, in any state, or a plugin offering tools."""
        return self._servers.has_server(server)

    async def list_tools(self, caller: Caller, server: str | None) -> Sequence[types.Tool]:
        """The READY servers' tools ``caller`` may call and no hook hides, under the
        view's names."""
        allowed = [
            tool
            for tool in self._servers.list_tools(server)
            if self._allowed(caller, server, tool.name)
        ]
        if not self._hooks.filtering:
            return allowed
        owned = [(self._owner(server, tool.name), tool) for tool in allowed]
        asked = [(origin[0], tool.model_copy(update={"name": origin[1]})) for origin, tool in owned]
        hidden = await self._hooks.hidden(caller, asked)
        return [tool for origin, tool in owned if origin not in hidden]

    async def callable_tools(self, caller: Caller) -> list[ListedTool]:
        """The tools ``/mcp`` lists to ``caller`` (:meth:`list_tools`), each with the server
        and own name it calls: the console's "your tools" view."""
        listed = []
        for tool in await self.list_tools(caller, None):
            server, own = self._owner(None, tool.name)
            listed.append(ListedTool(server, own, tool.name, tool.description or ""))
        return listed

    def _owner(self, server: str | None, name: str) -> tuple[str, str]:
        """The server and own name of a listed tool of the view."""
        target = self._servers.target(server, name)
        if target is None:
            raise UnknownTool(tool=name)
        return target

    def input_schema(
        self, caller: Caller, server: str | None, name: str
    ) -> Mapping[str, Any] | None:
        """The input schema of a listed tool ``caller`` may call; None otherwise."""
        tool = self._servers.find_tool(server, name)
        if tool is None or not self._allowed(caller, server, name):
            return None
        return tool.input_schema

    async def call_tool(
        self,
        caller: Caller,
        server: str | None,
        name: str,
        arguments: Mapping[str, Any],
        *,
        meta: Mapping[str, Any],
        progress: Progress | None,
        session_id: str = "",
        protocol_version: str = "",
    ) -> ToolResult:
        """Call the tool after checking the caller's permissions and running the hooks,
        recording the call.

        Raises:
            UnknownTool: No such tool, or one ``caller`` may not call or a hook hides.
            mcp.MCPError: The server's own JSON-RPC error (code, message and data as it
                sent them); :data:`UPSTREAM_UNAVAILABLE` when it is not connected, died
                or answered what is not MCP; ``REQUEST_TIMEOUT`` when the call's deadline
                passed. The message names the server. ``INTERNAL_ERROR`` when the call
                could not be recorded: then it was not made. The limits' error when
                the caller is over its rate limit: then it was not made either.
        """
        began = time.monotonic()
        target = self._servers.target(server, name)
        call = ToolCall(
            call_id=str(uuid.uuid4()),
            caller=caller,
            server=target[0] if target is not None else server or "",
            tool=target[1] if target is not None else name,
            arguments=arguments,
            session_id=session_id,
            trace=current_trace(),
        )
        if target is None:
            await self._refused(call, not_found(call, name), began)
            raise UnknownTool(tool=name)
        decision = decide(caller.permissions, call.server, call.tool)
        if not decision.allowed:
            await self._refused(call, denied(call, decision), began)
            raise UnknownTool(tool=name)
        if not self._servers.admits(caller, call.server, call.tool):
            await self._refused(call, admin_only(call), began)
            raise UnknownTool(tool=name)
        limits = self._limits
        refusal = None if limits is None else await limits.refusal(caller, call.server, call.tool)
        if refusal is not None:
            await self._refused(call, refusal.outcome, began)
            raise refusal.error
        hooked = HookedCall(
            call.call_id,
            caller,
            call.server,
            call.tool,
            # Only hooks read the definition: a call no hook sees does not look it up.
            definition=(
                self._servers.find_tool(call.server, call.tool)
                if self._hooks.any_for(call.server, call.tool)
                else None
            ),
            session_id=session_id,
            protocol_version=protocol_version,
            trace=call.trace,
        )
        try:
            if await self._hidden(hooked):
                await self._refused(call, hidden(call), began)
                raise UnknownTool(tool=name)
            before = await self._hooks.before(hooked, arguments)
        except asyncio.CancelledError:
            await self._refused(call, cancelled(call), began)
            raise
        call = dataclasses.replace(call, arguments=before.arguments, decisions=before.decisions)
        await self._started(call)
        if before.denied is not None:
            await self._finished(call, hook_denied(call, before.denied), began)
            return error_result(before.denied.reason, before.denied.hook)
        try:
            result = before.response
            if result is None:
                result = await self._servers.call_tool(
                    caller,
                    call.server,
                    call.tool,
                    dict(before.arguments),
                    meta=meta,
                    progress=progress,
                )
            after = await self._hooks.after(hooked, before, result, time.monotonic() - began)
        except UpstreamError as exc:
            await self._finished(call, failure_of(exc), began)
            raise _answer(exc, name) from None
        except BaseException as exc:
            # Cancelled (the caller cancelled or left), or a bug: the call still ends.
            ended = cancelled(call) if isinstance(exc, asyncio.CancelledError) else None
            await self._finished(call, ended or broken(call, exc), began)
            raise
        call = dataclasses.replace(call, decisions=before.decisions + after.decisions)
        if after.denied is not None:
            await self._finished(call, hook_denied(call, after.denied), began)
            return error_result(after.denied.reason, after.denied.hook)
        await self._finished(call, Completed(is_error=after.result.get("isError") is True), began)
        return after.result

    async def _hidden(self, call: HookedCall) -> bool:
        """Whether a FilterTools hook hides the called tool from its caller (a tool the
        server has not listed is not asked about)."""
        if call.definition is None or not self._hooks.active(Phase.FILTER, call.server, call.tool):
            return False
        found = await self._hooks.hidden(
            call.caller, [(call.server, call.definition)], call.session_id
        )
        return bool(found)

    async def _refused(self, call: ToolCall, outcome: Outcome, began: float) -> None:
        """Record a call that ends before it is made: started, and ``outcome``."""
        await self._started(call)
        await self._finished(call, outcome, began)

    async def _started(self, call: ToolCall) -> None:
        """Record the start before the call is made; a call that cannot be recorded is
        not made (every call is an event). Not cancelled halfway: a start that is
        recorded is followed by an end, a cancelled one included."""
        try:
            with anyio.CancelScope(shield=True):
                await self._calls.started(call)
        except CallNotRecorded as exc:
            log.error(
                "a tool call was refused: it could not be recorded",
                extra={"call_id": call.call_id, "server": call.server, "error": str(exc)},
            )
            raise MCPError(
                types.INTERNAL_ERROR,
                "the gateway could not record the call, so it did not make it; try again later",
                {"reason": "CALL_NOT_RECORDED"},
            ) from None

    async def _finished(self, call: ToolCall, outcome: Outcome, began: float) -> None:
        """Record the end, even in a cancelled task. A failure to record it leaves the
        answer as it is: the call was made, and its started event says so."""
        duration = time.monotonic() - began
        try:
            with anyio.CancelScope(shield=True):
                await self._calls.finished(call, outcome, duration_seconds=duration)
        except CallNotRecorded as exc:
            log.error(
                "the end of a tool call could not be recorded",
                extra={"call_id": call.call_id, "server": call.server, "error": str(exc)},
            )

    def _allowed(self, caller: Caller, server: str | None, name: str) -> bool:
        """Whether ``caller`` may call the view's tool ``name`` (False when unknown)."""
        target = self._servers.target(server, name)
        if target is None:
            return False
        return decide(caller.permissions, *target).allowed and self._servers.admits(caller, *target)


def _answer(exc: UpstreamError, name: str) -> Exception:
    """What the caller is told of an upstream failure of its call of ``name``."""
    if isinstance(exc, UnknownTool):
        return UnknownTool(tool=name)
    if isinstance(exc, UpstreamRejected):
        return MCPError(exc.code, exc.error_message, exc.data)
    if isinstance(exc, UpstreamTimeout):
        return MCPError(types.REQUEST_TIMEOUT, str(exc), _about(exc))
    return MCPError(UPSTREAM_UNAVAILABLE, str(exc), _about(exc))


def _about(exc: UpstreamError) -> dict[str, str]:
    """The ``data`` of an upstream failure: which server and tool."""
    return {"server": exc.server, "tool": exc.tool}
