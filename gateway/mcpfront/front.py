"""The MCP endpoint of the gateway: authentication, then the SDK's Streamable HTTP transport.

:class:`McpFront` is what the gateway's HTTP app hands the paths of
:mod:`~gateway.mcpfront.paths`. For ``/mcp`` and ``/mcp/s/<server>`` it:

1. authenticates the bearer credential with the gateway's guard; none or a bad one is
   401 with ``WWW-Authenticate: Bearer resource_metadata="…"`` (and
   ``error="invalid_token"`` when one was refused) and a JSON-RPC error body;
2. answers 404 (JSON-RPC error) on ``/mcp/s/<server>`` when no such server is
   configured (:meth:`Toolbox.has_server`), for every method, so a client given a wrong
   URL learns it at once; a configured server that is disabled or not ready has an
   empty view. Authentication comes first: only a caller learns which servers exist;
3. reads the body, and refuses one over the limit (413, JSON-RPC error), whether its
   ``Content-Length`` says so or it comes in chunks;
4. hands the raw request, with the caller in ``scope["user"]``, to one
   ``StreamableHTTPSessionManager`` in stateless mode: a 2026-07-28 request
   (``MCP-Protocol-Version`` header) is one exchange; a handshake-era one (2025-11-25,
   2025-06-18) gets a fresh transport per request, so any gateway replica serves any
   request of either era. The manager checks ``Host`` and ``Origin`` (DNS rebinding).

Each request runs in its trace (:func:`gateway.http.headers.scope_trace`: the caller's
``traceparent`` header, or a new trace), as a transcoded call does; a tool call passes it
upstream in ``_meta`` (:mod:`~gateway.mcpfront.server`).

Handshake-era clients in stateless mode lose what needs a session: server-to-client
requests (sampling, elicitation), resumption, and the standalone GET stream (the SDK
answers a GET with a stream that only pings). :mod:`~gateway.mcpfront.legacy` gives
them back ``list_changed`` and cancellation.

The metadata paths serve :mod:`~gateway.mcpfront.metadata` to anyone.

Lifecycle: :meth:`McpFront.start` enters the manager's ``run()`` (once per manager) in a
task of its own; :meth:`McpFront.drain` ends the open notification streams, so the HTTP
server can stop without waiting out its grace; :meth:`McpFront.close` leaves ``run()``.
Each is safe to call twice.
"""

from __future__ import annotations

import asyncio

from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    SubscriptionBus,
    ToolsListChanged,
)
from mcp.types import INTERNAL_ERROR, INVALID_REQUEST

from gateway.auth.errors import AuthError, AuthFailed
from gateway.auth.for_http import bearer_challenge
from gateway.http.asgi import Message, Receive, Scope, Send, header, read_body, send_response
from gateway.http.errors import PayloadTooLarge
from gateway.http.headers import scope_trace
from gateway.mcpfront import metadata
from gateway.mcpfront.callers import Authenticator, authenticated_user, caller_of
from gateway.mcpfront.cancel_relay import CancelRelay
from gateway.mcpfront.legacy import (
    Cancellations,
    ListChangedStreams,
    is_handshake_era,
    naming_session,
)
from gateway.mcpfront.paths import Route, RouteKind, route_of
from gateway.mcpfront.replies import send_error
from gateway.mcpfront.server import build_server, serving
from gateway.mcpfront.settings import McpSettings
from gateway.mcpfront.toolbox import Toolbox
from meshkit.spans import SpanRecorder
from meshkit.tls import MeshTls
from meshkit.tracing import use_trace

__all__ = ["McpFront"]


class McpFront:
    """The MCP endpoint.

    Args:
        toolbox: The tools served.
        authenticator: The gateway's guard (:class:`gateway.auth.HttpGuard`).
        settings: Resource URL, allowed hosts and origins, page size, body limit.
        issuer: The JWT issuer, named as authorization server in the metadata.
        bus: Where tool-list changes are fanned out to the open ``subscriptions/listen``
            streams; an in-process one when None.
        version: The gateway's version, in the server's info.
        nats_url: Where the replicas tell each other of a handshake-era client's
            cancellations (:mod:`gateway.mcpfront.cancel_relay`); none when None.
        nats_tls: The certificate of that NATS connection over TLS; plaintext when None.
        spans: Where each tool call's span goes (traces on); none when ``None``.
    """

    def __init__(
        self,
        toolbox: Toolbox,
        authenticator: Authenticator,
        settings: McpSettings,
        *,
        issuer: str | None = None,
        bus: SubscriptionBus | None = None,
        version: str = "",
        nats_url: str | None = None,
        nats_tls: MeshTls | None = None,
        spans: SpanRecorder | None = None,
    ) -> None:
        self._toolbox = toolbox
        self._authenticator = authenticator
        self._settings = settings
        self._issuer = issuer
        self._bus: SubscriptionBus = bus if bus is not None else InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self.server = build_server(
            toolbox,
            page_size=settings.page_size,
            listen=self._listen,
            version=version,
            spans=spans,
        )
        cancellations = Cancellations()
        self.server.middleware.append(cancellations)
        #: Tells the other replicas of cancellations this one runs no call for.
        self.cancel_relay: CancelRelay | None = None
        if nats_url:
            self.cancel_relay = CancelRelay(
                nats_url, on_cancel=cancellations.cancel_here, nats_tls=nats_tls
            )
            cancellations.tell_others = self.cancel_relay.tell
        self._streams = ListChangedStreams(self._bus, settings.transport_security)
        self._manager = StreamableHTTPSessionManager(
            self.server,
            stateless=True,
            # SSE: progress reaches the caller, and a closed request cancels its call.
            json_response=False,
            security_settings=settings.transport_security,
            max_request_body_size=settings.body_limit_bytes,
        )
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    def route(self, path: str) -> str | None:
        """The metrics label of ``path`` when the front answers it, else None."""
        route = route_of(path)
        return route.label if route is not None else None

    async def start(self) -> None:
        """Start the transport. Safe to call twice."""
        if self._task is not None:
            return
        if self.cancel_relay is not None:
            await self.cancel_relay.start()
        running = asyncio.Event()
        self._task = asyncio.create_task(self._run(running), name="mcp-front")
        waiting = asyncio.ensure_future(running.wait())
        try:
            await asyncio.wait((self._task, waiting), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
        if self._task.done():
            await self._task  # raises what stopped it

    def drain(self) -> None:
        """End the open notification streams (they close gracefully). Safe to call twice."""
        self._listen.close()
        self._streams.drain()

    async def close(self) -> None:
        """Stop the transport; requests still in flight are cancelled. Safe to call twice."""
        self.drain()
        self._closing.set()
        if self._task is not None:
            await self._task
        if self.cancel_relay is not None:
            await self.cancel_relay.close()

    async def tools_changed(self) -> None:
        """Tell every listening client of this replica that its tool list changed."""
        await self._bus.publish(ToolsListChanged())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer one HTTP request on a path :meth:`route` claims; returns the status."""
        route = route_of(scope["path"])
        if route is None:
            raise ValueError(f"the MCP front does not serve {scope['path']!r}")
        if route.kind is RouteKind.METADATA:
            return await self._metadata(scope, send)
        trace, _ = scope_trace(scope)
        with use_trace(trace):
            return await self._endpoint(route, scope, receive, send)

    async def _run(self, running: asyncio.Event) -> None:
        async with self._manager.run():
            running.set()
            await self._closing.wait()

    async def _metadata(self, scope: Scope, send: Send) -> int:
        if scope["method"] not in ("GET", "HEAD"):
            await send_response(
                send, 405, b"", content_type=b"text/plain", headers=[(b"allow", b"GET, HEAD")]
            )
            return 405
        body = metadata.document(scope, self._settings.resource_url, self._issuer)
        # A public document that browser-based clients fetch from their own origin.
        await send_response(send, 200, body, headers=[(b"access-control-allow-origin", b"*")])
        return 200

    async def _endpoint(self, route: Route, scope: Scope, receive: Receive, send: Send) -> int:
        authorization = (header(scope, b"authorization") or b"").decode("latin-1")
        try:
            identity = await self._authenticator.identify(scope)
        except AuthFailed as exc:
            challenge = bearer_challenge(
                exc,
                presented=bool(authorization.strip()),
                resource_metadata=metadata.metadata_url(scope, self._settings.resource_url),
            )
            return await _refuse(send, 401, exc, [(b"www-authenticate", challenge.encode())])
        except AuthError as exc:
            return await _refuse(send, exc.http_status, exc, [])
        if route.server is not None and not self._toolbox.has_server(route.server):
            message = f"no MCP server is named {route.server!r}"
            return await send_error(
                send, 404, INVALID_REQUEST, message, data={"server": route.server}
            )
        limit = self._settings.body_limit_bytes
        try:
            # Read here, declared or chunked: the SDK's own check answers plain text.
            receive = _replaying(await read_body(scope, receive, limit), receive)
        except PayloadTooLarge:
            message = f"the request body is larger than {limit} bytes"
            data = {"limit_bytes": limit}
            return await send_error(send, 413, INVALID_REQUEST, message, data=data)
        user = authenticated_user(identity, authorization.strip().partition(" ")[2].strip())
        scope = dict(scope, user=user)
        if is_handshake_era(scope):
            if scope["method"] == "GET":
                return await self._streams.serve(scope, receive, send)
            if scope["method"] == "POST":
                send = naming_session(scope, send)
        status = 0

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with serving(caller_of(scope), route.server):
            await self._manager.handle_request(scope, receive, recording)
        return status


def _replaying(body: bytes, receive: Receive) -> Receive:
    """``receive`` of a request whose body was read already: the body, then the rest."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _refuse(
    send: Send, status: int, error: AuthError, headers: list[tuple[bytes, bytes]]
) -> int:
    code = INVALID_REQUEST if status < 500 else INTERNAL_ERROR
    data = {"reason": error.reason}
    return await send_error(send, status, code, error.message, data=data, headers=headers)
