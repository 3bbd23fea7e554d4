"""One connection to an upstream MCP server, from the handshake until it is lost.

:func:`serve_connection` connects with ``mcp.Client`` (``server/discover``, or the
``initialize`` handshake of an older server), fetches every page of the tools, and then,
until the connection is lost:

- fetches the tools again when the server says they changed: ``tools/list_changed``
  arrives through the session's message handler (2025 revisions), or through a
  ``subscriptions/listen`` stream this function holds open (2026-07-28);
- pings the server when idle for a while, and at once when a call saw the connection
  fail, so that an HTTP server that went away is noticed without traffic;
- learns from the transport (:class:`~gateway.mcpfront.transports.Link`) that a child
  exited or a stream closed.

It runs in its caller's task, which also owns the SDK's task groups and child process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio
import mcp.types as types
from mcp import Client, MCPError
from mcp.client.session import ClientSession, IncomingMessage
from mcp.client.subscriptions import SubscriptionLost
from mcp.types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from gateway.mcpfront.spec import UpstreamSpec
from gateway.mcpfront.transports import Link, open_transport
from meshkit.registration import Backoff
from meshkit.version import package_version

__all__ = ["CLIENT_INFO", "ConnectionSettings", "describe_failure", "serve_connection"]

log = logging.getLogger(__name__)

CLIENT_INFO = types.Implementation(name="plugmesh-gateway", version=package_version())
# A tools/list that never ends is cut here.
_MAX_PAGES = 100


@dataclass(frozen=True)
class ConnectionSettings:
    """How the gateway connects to every upstream server.

    Attributes:
        connect_timeout_seconds: The longest a connect (handshake and tool list) may
            take; also bounds a refetch of the tools, a ping, and opening a listen stream.
        ping_interval_seconds: How often an idle connection is checked with a ping.
        child_environment: What a stdio child inherits, under its spec's ``env``.
        client_info: How the gateway introduces itself to the servers.
        backoff: Delays between failed connects (and before a dropped listen stream is
            opened again).
    """

    connect_timeout_seconds: float = 15.0
    ping_interval_seconds: float = 30.0
    child_environment: Mapping[str, str] = field(default_factory=dict, hash=False)
    client_info: types.Implementation = field(default_factory=lambda: CLIENT_INFO)
    backoff: Backoff = field(default_factory=Backoff)


OnReady = Callable[[ClientSession, str, list[types.Tool]], None]
OnTools = Callable[[list[types.Tool]], None]


async def serve_connection(
    spec: UpstreamSpec,
    link: Link,
    settings: ConnectionSettings,
    *,
    on_ready: OnReady,
    on_tools: OnTools,
) -> None:
    """Connect to ``spec``'s server and keep the connection until it is lost.

    Args:
        spec: The server.
        link: This connection's watch; its ``lost_reason`` says how it ended.
        settings: Timeouts and the like.
        on_ready: Called once connected, with the session, the protocol version and the
            tools; calls may go through the session from then on.
        on_tools: Called with the tools each time they are fetched again.

    Returns:
        When the connection is lost (``link.lost_reason``).

    Raises:
        Exception: The connect failed; :func:`describe_failure` makes a reason of it.
    """
    timeout = settings.connect_timeout_seconds

    async def on_message(message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            what = _short(_unreadable(message))
            link.note_garbage(what)
            log.warning(
                "mcp upstream %s sent what is not JSON-RPC: %s",
                spec.name,
                what,
                extra={"mcp_server": spec.name},
            )
        elif isinstance(message, types.ToolListChangedNotification):
            link.tools_changed.set()

    client = Client(
        open_transport(spec, link, child_environment=settings.child_environment),
        mode="auto",
        cache=None,
        client_info=settings.client_info,
        message_handler=on_message,
    )
    # One scope for the connect's deadline, lifted once connected: the client's task
    # groups live on inside it, which a `fail_after` around the connect alone forbids.
    with anyio.CancelScope(deadline=anyio.current_time() + timeout) as connect:
        async with client:
            session = client.session
            tools = await _list_tools(spec.name, session)
            connect.deadline = math.inf
            on_ready(session, client.protocol_version, tools)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(_follow_tools, spec.name, session, link, settings, on_tools)
                tasks.start_soon(_watch, session, link, settings)
                capabilities = client.server_capabilities.tools
                if (
                    client.protocol_version in MODERN_PROTOCOL_VERSIONS
                    and capabilities is not None
                    and capabilities.list_changed
                ):
                    tasks.start_soon(_listen, spec.name, client, link, settings)
                await link.lost.wait()
                tasks.cancel_scope.cancel()
    if connect.cancelled_caught:
        raise TimeoutError(f"no MCP handshake and tool list within {timeout} s")


async def _list_tools(server: str, session: ClientSession) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    for _ in range(_MAX_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools
    log.warning(
        "mcp upstream %s: tools/list still had pages after %d; keeping those",
        server,
        _MAX_PAGES,
        extra={"mcp_server": server},
    )
    return tools


async def _follow_tools(
    server: str,
    session: ClientSession,
    link: Link,
    settings: ConnectionSettings,
    on_tools: OnTools,
) -> None:
    """Fetch the tools again whenever the server says they changed."""
    while True:
        await link.tools_changed.wait()
        link.tools_changed = anyio.Event()
        try:
            with anyio.fail_after(settings.connect_timeout_seconds):
                listed = await _list_tools(server, session)
        except (MCPError, ValidationError, TimeoutError) as exc:
            link.lose(f"fetching the tools again failed: {describe_failure(exc)}")
            return
        on_tools(listed)


async def _watch(session: ClientSession, link: Link, settings: ConnectionSettings) -> None:
    """Ping the server when idle for a while, or at once when a call saw it fail."""
    timeout = settings.connect_timeout_seconds
    while True:
        with anyio.move_on_after(settings.ping_interval_seconds):
            await link.suspect.wait()
        link.suspect = anyio.Event()
        try:
            with anyio.fail_after(timeout):
                await session.send_ping()
        except TimeoutError:
            link.lose(f"no answer to a ping within {timeout} s")
            return
        except MCPError as exc:
            if exc.code == types.CONNECTION_CLOSED:
                link.lose(f"the connection ended: {exc.error.message}")
                return
            # Any other answer, even an error, comes from a live server.


async def _listen(server: str, client: Client, link: Link, settings: ConnectionSettings) -> None:
    """Hold a ``subscriptions/listen`` stream (2026-07-28) so that the server's
    ``tools/list_changed`` reaches the session; open it again when it drops. Each time
    the stream opens the tools are fetched again: a change between the last fetch and
    the stream's start (the first fetch, or a dropped stream) told nobody."""
    while True:
        try:
            async with contextlib.AsyncExitStack() as stack:
                with anyio.fail_after(settings.connect_timeout_seconds):
                    subscription = await stack.enter_async_context(
                        client.listen(tools_list_changed=True)
                    )
                link.tools_changed.set()  # changes may have passed unseen
                async for _event in subscription:
                    link.tools_changed.set()
        except SubscriptionLost:
            pass
        except (MCPError, TimeoutError) as exc:
            if isinstance(exc, MCPError) and exc.code == types.CONNECTION_CLOSED:
                link.lose(f"the connection ended: {exc.error.message}")
                return
            log.warning(
                "mcp upstream %s refused subscriptions/listen (%s); its tools are fetched "
                "again only on a refresh or a reconnect",
                server,
                describe_failure(exc),
                extra={"mcp_server": server},
            )
            return
        # The stream ended: if the server is gone, the ping says so; else listen again.
        link.suspect.set()
        await anyio.sleep(settings.backoff.delay(1))


def describe_failure(exc: BaseException) -> str:
    """A one-line reason from an exception, looking inside exception groups."""
    if isinstance(exc, BaseExceptionGroup):
        leaves = [
            describe_failure(inner)
            for inner in exc.exceptions
            if not isinstance(inner, asyncio.CancelledError)
        ]
        return "; ".join(leaves) if leaves else repr(exc)
    if isinstance(exc, MCPError):
        return f"{exc.error.message} (JSON-RPC error {exc.error.code})"
    if isinstance(exc, ValidationError):
        return f"the server answered what is not MCP: {exc.errors()[0]['msg']}"
    if isinstance(exc, TimeoutError) and str(exc):
        return str(exc)
    text = str(exc)
    return _short(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def _unreadable(exc: Exception) -> str:
    """What a transport could not read: the offending input when the SDK kept it."""
    if isinstance(exc, ValidationError) and exc.errors():
        found = exc.errors()[0].get("input")
        if isinstance(found, str | bytes):
            return repr(found)
    return repr(exc)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
