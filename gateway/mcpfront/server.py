"""The MCP server of the front: the SDK's low-level ``Server`` over a :class:`Toolbox`.

One server answers every view; a handler finds its caller in ``scope["user"]``
(:mod:`~gateway.mcpfront.callers`) and its view in the request's path. It serves
``tools/list`` (paged, :mod:`~gateway.mcpfront.paging`), ``tools/call`` and
``subscriptions/listen`` (the 2026-07-28 ``list_changed``). Results pass through whole;
only the upstream's own ``io.modelcontextprotocol/serverInfo`` stamp is taken out of
``_meta``, since the caller talks to the gateway. A tool the toolbox does not know is
``-32602 Unknown tool: <name>``, the answer the specification gives.

A ``tools/call`` runs in its trace and passes it upstream as ``_meta.traceparent`` (and
``_meta.tracestate``), see :func:`_call_trace`; the toolbox records the call in that trace,
with the caller's session id when it has one. With traces on (``spans``) the call is a
span of its own, ``tools/call <tool>``, the child of that context (OpenTelemetry's MCP
conventions), and its context is the call's.

The 2026-07-28 transport checks a ``tools/call``'s ``Mcp-Param-*`` headers against the
tool's input schema before any handler runs, with no request context: the front names
the caller and the view for that look-up with :func:`serving`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import mcp.types as types
from mcp import MCPError
from mcp.server.context import HandlerResult, ServerRequestContext
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler

from gateway.mcpfront.callers import caller_of
from gateway.mcpfront.paging import InvalidCursor, page_of
from gateway.mcpfront.paths import route_of
from gateway.mcpfront.toolbox import Caller, Toolbox, ToolResult, UnknownTool
from meshkit.spans import OpenSpan, SpanKind, SpanRecorder
from meshkit.tracing import (
    TRACEPARENT,
    TRACESTATE,
    TraceContext,
    current_trace,
    new_trace,
    use_trace,
)

__all__ = ["NAME", "GatewayServer", "build_server", "serving"]

#: The server's name in ``initialize`` and ``server/discover`` answers.
NAME = "plugmesh"
_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
_PROTOCOL_META_PREFIX = "io.modelcontextprotocol/"
_SESSION_ID_LIMIT = 256
_PROTOCOL_VERSION_LIMIT = 32
_PROGRESS_KEYS = ("progress_token", "progressToken")


@dataclass(frozen=True)
class _Visit:
    caller: Caller
    server: str | None


_VISIT: contextvars.ContextVar[_Visit | None] = contextvars.ContextVar("mcp_visit", default=None)


@contextlib.contextmanager
def serving(caller: Caller, server: str | None) -> Iterator[None]:
    """Within: the request being served is ``caller``'s, on view ``server``."""
    token = _VISIT.set(_Visit(caller, server))
    try:
        yield
    finally:
        _VISIT.reset(token)


class GatewayServer(Server[dict[str, Any]]):
    """The SDK's low-level server, telling handshake-era clients that it sends
    ``notifications/tools/list_changed`` (the SDK's manager asks with no options)."""

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities,
            extensions,
        )


def build_server(
    toolbox: Toolbox,
    *,
    page_size: int,
    listen: ListenHandler,
    version: str,
    spans: SpanRecorder | None = None,
) -> GatewayServer:
    """The MCP server answering from ``toolbox``, ``page_size`` tools a page; each tool
    call a span in ``spans`` (none when ``None``)."""

    def input_schema(name: str) -> Mapping[str, Any] | None:
        visit = _VISIT.get()
        return None if visit is None else toolbox.input_schema(visit.caller, visit.server, name)

    async def list_tools(
        ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> HandlerResult:
        caller, server = _visit(ctx)
        tools = await toolbox.list_tools(caller, server)
        try:
            return page_of(tools, params.cursor, server=server, size=page_size)
        except InvalidCursor as exc:
            raise MCPError(types.INVALID_PARAMS, f"Invalid cursor: {exc}") from None

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> HandlerResult:
        caller, server = _visit(ctx)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            await ctx.session.report_progress(done, total, message)

        meta = _forwarded_meta(ctx.meta)
        trace, remote = _call_trace(meta)
        span = None
        if spans is not None:
            span = _tool_span(spans, params.name, trace, remote)
            trace = span.trace
        meta = {k: v for k, v in meta.items() if k not in (TRACEPARENT, TRACESTATE)}
        meta.update(trace.headers())
        error: str | None = "cancelled"
        try:
            with use_trace(trace):
                result = await toolbox.call_tool(
                    caller,
                    server,
                    params.name,
                    params.arguments or {},
                    meta=meta,
                    # Asked upstream only when the caller asked: a token costs the
                    # upstream a notification per step.
                    progress=progress if _wants_progress(ctx.meta) else None,
                    session_id=_session_of(ctx),
                    protocol_version=_protocol_of(ctx),
                )
            error = "tool_error" if _is_error(result) else None
        except UnknownTool:
            error = str(types.INVALID_PARAMS)
            # The name the caller used, whatever the toolbox knows it as: an unknown
            # tool and a forbidden one read alike.
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}") from None
        except MCPError as exc:
            error = str(exc.error.code)
            raise
        except Exception as exc:
            error = type(exc).__qualname__
            raise
        finally:
            if span is not None:
                span.end(error=error)
        return _passed_through(result)

    server = GatewayServer(
        NAME,
        version=version,
        title="plugmesh MCP gateway",
        get_tool_input_schema=input_schema,
        on_subscriptions_listen=listen,
    )
    # Registered by method so that a handler may return the result as a JSON object
    # (an upstream's, passed through) as well as a model.
    server.add_request_handler("tools/list", types.PaginatedRequestParams, list_tools)
    server.add_request_handler("tools/call", types.CallToolRequestParams, call_tool)
    return server


def _visit(ctx: ServerRequestContext[Any, Any]) -> tuple[Caller, str | None]:
    request = ctx.request
    if request is None:
        raise RuntimeError("the MCP front serves HTTP requests only")
    route = route_of(request.scope["path"])
    return caller_of(request.scope), route.server if route is not None else None


def _session_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """The caller's MCP session id ("" without one): the ``Mcp-Session-Id`` a
    handshake-era client sends (:mod:`~gateway.mcpfront.legacy`)."""
    request = ctx.request
    session = request.headers.get("mcp-session-id") if request is not None else None
    # The client's own value, recorded: bounded, whatever it sent.
    return (session or "")[:_SESSION_ID_LIMIT]


def _protocol_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """The MCP revision the caller says it speaks (``MCP-Protocol-Version``), "" when
    it says none; bounded, whatever it sent."""
    request = ctx.request
    version = request.headers.get("mcp-protocol-version") if request is not None else None
    return (version or "")[:_PROTOCOL_VERSION_LIMIT]


def _wants_progress(meta: Mapping[str, Any] | None) -> bool:
    """Whether the request's ``_meta`` carries a progress token."""
    return any(key in (meta or {}) for key in _PROGRESS_KEYS)


def _forwarded_meta(meta: Mapping[str, Any] | None) -> dict[str, Any]:
    """The request's ``_meta`` without what belongs to this hop: the progress token (the
    toolbox reports progress through its callback) and the protocol's envelope."""
    return {
        key: value
        for key, value in (meta or {}).items()
        if key not in _PROGRESS_KEYS and not key.startswith(_PROTOCOL_META_PREFIX)
    }


def _tool_span(spans: SpanRecorder, tool: str, parent: TraceContext, remote: bool) -> OpenSpan:
    attributes = {
        "mcp.method.name": "tools/call",
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
    }
    return spans.start(
        f"tools/call {tool}", SpanKind.SERVER, parent, remote=remote, attributes=attributes
    )


def _is_error(result: ToolResult) -> bool:
    if isinstance(result, types.CallToolResult):
        return result.is_error is True
    return result.get("isError") is True


def _call_trace(meta: Mapping[str, Any]) -> tuple[TraceContext, bool]:
    """The trace context of a ``tools/call``, which goes upstream in its ``_meta``, and
    whether it came in the ``_meta`` (from the caller's process).

    The gateway continues the caller's trace, as it does for a transcoded call: the
    context passes on as the caller sent it. The call's own ``_meta.traceparent`` (with
    its ``_meta.tracestate``), when valid, is that context: MCP carries W3C trace context
    per message there, so it is the more specific. Otherwise (absent or malformed) the
    HTTP request's is: its ``traceparent`` header, or the new trace the front started for
    the request (:mod:`~gateway.mcpfront.front`). A ``tracestate`` never travels without
    the ``traceparent`` it came with.
    """
    parent = meta.get(TRACEPARENT)
    if isinstance(parent, str):
        state = meta.get(TRACESTATE)
        found = TraceContext.from_headers(
            {TRACEPARENT: parent, TRACESTATE: state if isinstance(state, str) else ""}
        )
        if found is not None:
            return found, True
    return current_trace() or new_trace(), False


def _passed_through(result: ToolResult) -> HandlerResult:
    if isinstance(result, types.CallToolResult):
        if result.meta and _SERVER_INFO in result.meta:
            kept = {key: value for key, value in result.meta.items() if key != _SERVER_INFO}
            return result.model_copy(update={"meta": kept or None})
        return result
    raw = dict(result)
    # The SDK writes a JSON object as it is: a 2026-07-28 caller needs the result's kind.
    raw.setdefault("resultType", "complete")
    stamped = raw.get("_meta")
    if isinstance(stamped, Mapping) and _SERVER_INFO in stamped:
        raw["_meta"] = {key: value for key, value in stamped.items() if key != _SERVER_INFO}
    return raw
