"""What stateless mode takes from handshake-era clients, given back without server state.

The SDK's stateless transport answers a handshake-era (2025-11-25, 2025-06-18) client
with no session: it mints no ``Mcp-Session-Id``, so the client opens no GET stream and
hears no ``notifications/tools/list_changed``; and its ``notifications/cancelled``
arrives on a transport of its own, which knows nothing of the call and drops it. The
front gives both back, with nothing any replica must remember:

- **A session id that is only a name.** The answer to a handshake-era POST without
  ``Mcp-Session-Id`` carries a fresh random one. The SDK ignores it on later requests
  (stateless), so any replica serves them; the client uses it to open its GET stream
  and to name its connection.
- **The GET stream** (:class:`ListChangedStreams`): an SSE stream that carries
  ``notifications/tools/list_changed`` each time the front's subscription bus
  publishes ``ToolsListChanged`` (the same bus as the 2026-07-28
  ``subscriptions/listen`` streams), and a comment every 15 s so that proxies keep it
  open.
- **Cancellation** (:class:`Cancellations`, a middleware of the SDK server): a running
  ``tools/call`` is known by (caller, session id, request id); the
  ``notifications/cancelled`` of that key cancels it (task cancellation, so the toolbox
  call is cancelled), and the request is answered with an error its client has already
  forgotten. A replica that runs no call of that key tells the others
  (:mod:`gateway.mcpfront.cancel_relay`), since a load balancer may have sent the
  cancellation elsewhere.

Still out of reach: server-to-client requests (sampling, elicitation) and resumption
(``Last-Event-ID``). A change of the tool list is heard from each replica's own view of
the servers, which the replicas keep alike (:mod:`gateway.mcpservers.events`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any

import anyio
from mcp import MCPError
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.subscriptions import ServerEvent, SubscriptionBus, ToolsListChanged
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp.types import INTERNAL_ERROR, INVALID_REQUEST
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from starlette.requests import Request

from gateway.http.asgi import Message, Receive, Scope, Send, header
from gateway.mcpfront.callers import caller_of
from gateway.mcpfront.cancel_relay import CallKey
from gateway.mcpfront.replies import send_error
from meshkit.tasks import cancel_and_wait

__all__ = ["Cancellations", "ListChangedStreams", "is_handshake_era", "naming_session"]

SESSION_ID = b"mcp-session-id"
#: How often an idle stream sends a comment, as the SDK's own streams do.
PING_SECONDS = 15.0
#: The answer to a cancelled request: the LSP's RequestCancelled (MCP defines none).
REQUEST_CANCELLED = -32800

_LIST_CHANGED = json.dumps(
    {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}, separators=(",", ":")
)
_END = "end"
_CHANGED = "changed"


def is_handshake_era(scope: Scope) -> bool:
    """Whether the request is of a handshake-era client: the SDK's own routing, by the
    ``MCP-Protocol-Version`` header (absent, or a handshake version)."""
    version = header(scope, b"mcp-protocol-version")
    return version is None or version.decode("latin-1") in HANDSHAKE_PROTOCOL_VERSIONS


def naming_session(scope: Scope, send: Send) -> Send:
    """``send``, adding a fresh ``Mcp-Session-Id`` to the answer when the request has none."""
    if header(scope, SESSION_ID) is not None:
        return send
    session = uuid.uuid4().hex.encode()

    async def named(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            if not any(bytes(name).lower() == SESSION_ID for name, _ in headers):
                message = {**message, "headers": [*headers, (SESSION_ID, session)]}
        await send(message)

    return named


class ListChangedStreams:
    """The handshake-era GET streams: ``notifications/tools/list_changed`` on each change.

    Args:
        bus: The subscription bus the front publishes tool-list changes on.
        security: The transport's ``Host``/``Origin`` checks, applied to the GET too.
        max_streams: Most streams open at once; more are refused with 503.
    """

    def __init__(
        self, bus: SubscriptionBus, security: TransportSecuritySettings, *, max_streams: int = 1024
    ) -> None:
        self._bus = bus
        self._security = TransportSecurityMiddleware(security)
        self._max = max_streams
        self._streams: set[asyncio.Queue[str]] = set()

    def drain(self) -> None:
        """End every open stream. Safe to call twice."""
        for queue in self._streams:
            queue.put_nowait(_END)

    async def serve(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer a handshake-era GET; returns the HTTP status."""
        refused = await self._security.validate_request(Request(scope, receive), is_post=False)
        if refused is not None:
            await refused(scope, receive, send)
            return refused.status_code
        accept = (header(scope, b"accept") or b"").decode("latin-1")
        if "text/event-stream" not in accept:
            message = "the GET stream needs Accept: text/event-stream"
            return await send_error(send, 406, INVALID_REQUEST, message)
        if len(self._streams) >= self._max:
            return await send_error(send, 503, INTERNAL_ERROR, "too many open GET streams")
        queue: asyncio.Queue[str] = asyncio.Queue()
        self._streams.add(queue)
        unsubscribe = self._bus.subscribe(_on_change(queue))
        watcher = asyncio.create_task(_until_disconnect(receive, queue), name="mcp-get-disconnect")
        try:
            await self._stream(scope, queue, send)
        finally:
            unsubscribe()
            self._streams.discard(queue)
            await cancel_and_wait(watcher)
        return 200

    async def _stream(self, scope: Scope, queue: asyncio.Queue[str], send: Send) -> None:
        headers = [
            (b"content-type", b"text/event-stream"),
            (b"cache-control", b"no-cache, no-transform"),
            (b"x-accel-buffering", b"no"),
        ]
        session = header(scope, SESSION_ID)
        if session is not None:
            headers.append((SESSION_ID, session))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), PING_SECONDS)
            except TimeoutError:
                await _body(send, b": ping\n\n")
                continue
            if item == _END:
                break
            # Changes that came while one was pending are one change to the client.
            ended = False
            while not queue.empty():
                ended = queue.get_nowait() == _END or ended
            await _body(send, f"event: message\ndata: {_LIST_CHANGED}\n\n".encode())
            if ended:
                break
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class Cancellations:
    """A middleware of the SDK server: ``notifications/cancelled`` of a handshake-era
    client cancels its running ``tools/call``, found by (caller, session id, request id),
    on this replica or, through :attr:`tell_others`, on the one running it.
    """

    def __init__(self) -> None:
        self._running: dict[CallKey, anyio.CancelScope] = {}
        #: Tells the other replicas of a cancellation this one runs no call for
        #: (:meth:`~gateway.mcpfront.cancel_relay.CancelRelay.tell`); nobody when None.
        self.tell_others: Callable[[CallKey], None] | None = None

    def cancel_here(self, key: CallKey) -> bool:
        """Cancel the call ``key`` if this replica runs it; whether it did."""
        running = self._running.get(key)
        if running is None:
            return False
        running.cancel()
        return True

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request = ctx.request
        session = request.headers.get("mcp-session-id") if request is not None else None
        if request is None or session is None or not is_handshake_era(request.scope):
            return await call_next(ctx)
        caller = caller_of(request.scope).id
        if ctx.method == "notifications/cancelled":
            cancelled = (caller, session, str((ctx.params or {}).get("requestId")))
            if not self.cancel_here(cancelled) and self.tell_others is not None:
                self.tell_others(cancelled)
            return await call_next(ctx)
        if ctx.method != "tools/call" or ctx.request_id is None:
            return await call_next(ctx)
        key = (caller, session, str(ctx.request_id))
        with anyio.CancelScope() as scope:
            self._running[key] = scope
            try:
                return await call_next(ctx)
            finally:
                if self._running.get(key) is scope:
                    del self._running[key]
        # Reached only when cancelled: the client has forgotten the request by now, but
        # its POST still waits for an answer.
        raise MCPError(REQUEST_CANCELLED, "Request cancelled")


def _on_change(queue: asyncio.Queue[str]) -> Callable[[ServerEvent], None]:
    def deliver(event: ServerEvent) -> None:
        if isinstance(event, ToolsListChanged):
            queue.put_nowait(_CHANGED)

    return deliver


async def _until_disconnect(receive: Receive, queue: asyncio.Queue[str]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    queue.put_nowait(_END)


async def _body(send: Send, chunk: bytes) -> None:
    await send({"type": "http.response.body", "body": chunk, "more_body": True})
