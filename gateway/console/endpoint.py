"""The console's HTTP endpoints, under ``/console``:

| path | who | what |
|---|---|---|
| ``GET /console`` | anyone | the page (it signs in with a token kept in the tab) |
| ``GET /console/static/<file>`` | anyone | its scripts and styles |
| ``GET /console/api/me`` | signed in | who the caller is, whether an admin |
| ``GET /console/api/mesh`` | signed in | SSE: the mesh, a frame per change and per lease renewal |
| ``GET /console/api/routes`` | signed in | every HTTP route and gRPC method with its access |
| ``GET /console/api/tools`` | signed in | the MCP tools the caller may call, and why |
| ``GET /console/api/decision?tool=`` | signed in | may the caller call a server/tool, and why |
| ``GET /console/api/mcp`` | admins | SSE: a frame when a server's state, error or tools change |
| ``GET /console/api/events?type=&subject=`` | admins | SSE: the events as they are published |
| ``GET /console/api/deadletters`` | admins | the dead letters, oldest first |
| ``POST /console/api/deadletters/<id>:replay`` | admins | replay one (by sequence or event id) |

The gateway's app hands this endpoint every request of those paths
(:class:`gateway.http.ports.ConsoleEndpoint`); answers are JSON, errors
``google.rpc.Status`` bodies as everywhere else on the gateway.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from gateway.auth.for_http import HttpUnavailable
from gateway.catalog import Catalog
from gateway.console import assets
from gateway.console.callers import CallerCheck, caller_of, identity_view
from gateway.console.events import EventsUnavailable, NatsEvents, letter_view
from gateway.console.leases import Leases
from gateway.console.mcp import AddListener, change_frames
from gateway.console.mesh import mesh_frames
from gateway.console.routes import RouteView
from gateway.console.sse import serve_stream
from gateway.console.tools import CallableTools, decision_view, tools_view
from gateway.http.asgi import Receive, Scope, Send, send_response
from gateway.http.errors import (
    BadRequest,
    HttpError,
    MethodNotAllowed,
    RouteNotFound,
    status_json,
)
from gateway.http.render import dumps
from gateway.mcpfront.callers import caller_for
from meshkit.events.errors import DeadLetterNotFound
from meshkit.permissions import decide

__all__ = ["PREFIX", "Console"]

PREFIX = "/console"
_STATIC = f"{PREFIX}/static/"
_API = f"{PREFIX}/api/"
_LETTERS = "deadletters/"
_REPLAY = ":replay"
Handler = Callable[[Scope, Receive, Send], Awaitable[int]]


class Console:
    """The console's endpoints.

    Args:
        catalog: The mesh, as the registry's watch keeps it.
        callers: Checks the bearer credential of each API request.
        events: The mesh's events and dead letters.
        mcp_changes: Registers a listener of changes of the MCP servers (state, last
            error, tools); the MCP feed sends only its first frame when None.
        leases: The instances' leases, renewals included; the mesh feed shows the
            leases as of the catalog's last change when None.
        tools: The MCP front's tools per caller; the "your tools" API is absent when None.
        heartbeat_seconds: How often an idle live feed says it is alive.
    """

    def __init__(
        self,
        catalog: Catalog,
        callers: CallerCheck,
        events: NatsEvents,
        *,
        mcp_changes: AddListener | None = None,
        leases: Leases | None = None,
        tools: CallableTools | None = None,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self._leases = leases
        self._catalog = catalog
        self._callers = callers
        self._events = events
        self._mcp_changes: AddListener = mcp_changes or _no_changes
        self._tools = tools
        self._heartbeat = heartbeat_seconds
        self._routes = RouteView()
        self._closing = asyncio.Event()
        self._api: dict[str, Handler] = {
            "me": self._me,
            "mesh": self._mesh,
            "routes": self._route_view,
            "tools": self._tool_view,
            "decision": self._decision,
            "mcp": self._mcp,
            "events": self._event_tail,
            "deadletters": self._dead_letters,
        }

    def route(self, path: str) -> str | None:
        """The metrics label of ``path`` when the console answers it, else None."""
        if path in (PREFIX, f"{PREFIX}/"):
            return PREFIX
        if path.startswith(_STATIC):
            return _STATIC
        if path.startswith(_API):
            name = path[len(_API) :]
            if name.startswith(_LETTERS) and name.endswith(_REPLAY):
                return f"{_API}{_LETTERS}{{id}}{_REPLAY}"
            return path if name in self._api else _API
        if path.startswith(f"{PREFIX}/"):
            return PREFIX
        return None

    def drain(self) -> None:
        """End the open live feeds (the gateway is stopping). Safe to call twice."""
        self._closing.set()

    async def close(self) -> None:
        """End the live feeds and close what they shared: the leases' watch and the NATS
        connection. Safe to call twice."""
        self.drain()
        if self._leases is not None:
            await self._leases.close()
        await self._events.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer a request under ``/console``; returns the HTTP status sent."""
        try:
            return await self._answer(scope, receive, send)
        except HttpError as exc:
            headers = [(k.lower().encode(), v.encode()) for k, v in exc.headers.items()]
            await send_response(send, exc.status, status_json(exc.to_status()), headers=headers)
            return exc.status

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> int:
        path: str = scope["path"]
        if path.startswith(_API):
            name = path[len(_API) :]
            if name.startswith(_LETTERS) and name.endswith(_REPLAY):
                _only(scope, "POST")
                return await self._replay(scope, send, name[len(_LETTERS) : -len(_REPLAY)])
            handler = self._api.get(name)
            if handler is None:
                raise RouteNotFound(f"no console API {path}", reason="ROUTE_NOT_FOUND")
            _only(scope, "GET")
            return await handler(scope, receive, send)
        _only(scope, "GET", "HEAD")
        if path in (PREFIX, f"{PREFIX}/"):
            return await _file(send, assets.PAGE)
        if path.startswith(_STATIC):
            return await _file(send, path[len(_STATIC) :])
        raise RouteNotFound(f"no console page {path}", reason="ROUTE_NOT_FOUND")

    async def _me(self, scope: Scope, receive: Receive, send: Send) -> int:
        identity = await caller_of(self._callers, scope)
        await send_response(send, 200, dumps(identity_view(identity)))
        return 200

    async def _route_view(self, scope: Scope, receive: Receive, send: Send) -> int:
        await caller_of(self._callers, scope)
        await send_response(send, 200, dumps(self._routes.of(self._catalog.snapshot)))
        return 200

    async def _tool_view(self, scope: Scope, receive: Receive, send: Send) -> int:
        identity = await caller_of(self._callers, scope)
        if self._tools is None:
            raise RouteNotFound("this gateway serves no MCP tools", reason="ROUTE_NOT_FOUND")
        await send_response(send, 200, dumps(await tools_view(self._tools, caller_for(identity))))
        return 200

    async def _decision(self, scope: Scope, receive: Receive, send: Send) -> int:
        identity = await caller_of(self._callers, scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        server, _, tool = query.get("tool", [""])[0].strip().partition("/")
        if not server or not tool:
            raise BadRequest(
                "tool must be <server>/<tool>, for example github/create_issue",
                reason="INVALID_ARGUMENT",
                metadata={"field": "tool"},
            )
        decision = decide(caller_for(identity).permissions, server, tool)
        await send_response(send, 200, dumps(decision_view(decision)))
        return 200

    async def _mesh(self, scope: Scope, receive: Receive, send: Send) -> int:
        await caller_of(self._callers, scope)
        return await serve_stream(
            receive,
            send,
            mesh_frames(self._catalog, self._leases),
            closing=self._closing,
            heartbeat_seconds=self._heartbeat,
        )

    async def _mcp(self, scope: Scope, receive: Receive, send: Send) -> int:
        await caller_of(self._callers, scope, admin=True)
        return await serve_stream(
            receive,
            send,
            change_frames(self._mcp_changes),
            closing=self._closing,
            heartbeat_seconds=self._heartbeat,
        )

    async def _event_tail(self, scope: Scope, receive: Receive, send: Send) -> int:
        await caller_of(self._callers, scope, admin=True)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        pattern = query.get("type", [""])[0].strip()
        subject = query.get("subject", [""])[0].strip()
        try:
            frames = await self._events.tail(pattern, subject)
        except ValueError as exc:
            raise BadRequest(
                str(exc), reason="INVALID_ARGUMENT", metadata={"field": "type"}
            ) from None
        except EventsUnavailable as exc:
            raise HttpUnavailable(str(exc), reason="EVENTS_UNAVAILABLE") from None
        return await serve_stream(
            receive, send, frames, closing=self._closing, heartbeat_seconds=self._heartbeat
        )

    async def _dead_letters(self, scope: Scope, receive: Receive, send: Send) -> int:
        await caller_of(self._callers, scope, admin=True)
        try:
            letters = await self._events.dead_letters()
        except EventsUnavailable as exc:
            raise HttpUnavailable(str(exc), reason="EVENTS_UNAVAILABLE") from None
        body = {"deadLetters": [letter_view(letter) for letter in letters]}
        await send_response(send, 200, dumps(body))
        return 200

    async def _replay(self, scope: Scope, send: Send, letter_id: str) -> int:
        await caller_of(self._callers, scope, admin=True)
        try:
            letter = await self._events.replay(letter_id)
        except DeadLetterNotFound as exc:
            raise RouteNotFound(str(exc), reason="DEAD_LETTER_NOT_FOUND") from None
        except EventsUnavailable as exc:
            raise HttpUnavailable(str(exc), reason="EVENTS_UNAVAILABLE") from None
        await send_response(send, 200, dumps({"replayed": letter_view(letter)}))
        return 200


def _no_changes(_listener: Callable[[], None]) -> Callable[[], None]:
    return lambda: None


def _only(scope: Scope, *methods: str) -> None:
    if scope["method"] not in methods:
        allowed = ", ".join(methods)
        raise MethodNotAllowed(
            f"{scope['method']} is not allowed on {scope['path']}; allowed: {allowed}",
            reason="METHOD_NOT_ALLOWED",
            metadata={"allow": allowed},
            headers={"Allow": allowed},
        )


async def _file(send: Send, name: str) -> int:
    found = assets.asset(name)
    if found is None:
        raise RouteNotFound(f"no console asset {name!r}", reason="ROUTE_NOT_FOUND")
    content_type, body = found
    await send_response(send, 200, body, content_type=content_type, headers=assets.SECURITY_HEADERS)
    return 200
