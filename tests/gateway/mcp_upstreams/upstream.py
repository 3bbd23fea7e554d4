"""An MCP server of our own for the gateway's upstream tests, on the SDK's ``MCPServer``.

Run it over stdio (the gateway starts it)::

    python -m tests.gateway.mcp_upstreams.upstream stdio [--legacy] [--page-size N]

or over Streamable HTTP, printing ``port <n>`` once it listens::

    python -m tests.gateway.mcp_upstreams.upstream http [--port N] [--legacy] ...

``--legacy`` serves only the 2025 revisions (the ``initialize`` handshake): a client's
``server/discover`` is refused, so it falls back; without it a 2.x client speaks 2026-07-28.
``--page-size`` pages ``tools/list``. ``--bad-names`` adds tools whose names the gateway
must leave out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from typing import Any, TypedDict

import anyio
import mcp.types as types
import uvicorn
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import NotificationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server

#: A tool name that is fine on its own but too long (over 64) once prefixed with any
#: server name and ``__``.
LONG_NAME = "a_tool_name_that_is_fine_alone_but_too_long_behind_a_server_name"
#: Tool names outside the specification's character set.
BAD_NAMES = ("has space", "has/slash")

server = MCPServer("plugmesh-test-upstream", version="1.0.0", log_level="ERROR")
#: What happened in this process, for tests to read back with the ``events`` tool.
events: list[str] = []


@server.tool()
def echo(text: str) -> str:
    """Echo the text back."""
    return f"echo:{text}"


class Sum(TypedDict):
    total: int


@server.tool()
def add(a: int, b: int) -> Sum:
    """Add two numbers; the result is structured (the tool has an output schema)."""
    return {"total": a + b}


@server.tool()
def rich() -> types.CallToolResult:
    """Every kind of content, annotations, structured content and ``_meta``."""
    return types.CallToolResult(
        content=[
            types.TextContent(
                text="t", _meta={"k": "v"}, annotations=types.Annotations(audience=["user"])
            ),
            types.ImageContent(data="aW1hZ2U=", mime_type="image/png"),
            types.AudioContent(data="YXVkaW8=", mime_type="audio/wav"),
            types.ResourceLink(uri="file:///x", name="x"),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(uri="file:///b", blob="YmxvYg==")
            ),
            types.EmbeddedResource(
                resource=types.TextResourceContents(uri="file:///t", text="text resource")
            ),
        ],
        structured_content={"anything": [1, "two", None]},
        _meta={"test/meta": {"x": 1}},
    )


@server.tool()
def fails(reason: str) -> types.CallToolResult:
    """A tool error: ``isError`` with the reason."""
    return types.CallToolResult(is_error=True, content=[types.TextContent(text=reason)])


@server.tool()
async def slow(steps: int, ctx: Context, step_seconds: float = 0.2) -> str:
    """Count to ``steps``, reporting progress at each; records a cancellation."""
    events.append("slow started")
    done = 0
    try:
        for done in range(1, steps + 1):
            await ctx.report_progress(done, steps, f"step {done}")
            await anyio.sleep(step_seconds)
    except anyio.get_cancelled_exc_class():
        events.append(f"slow cancelled at {done}")
        print(f"slow cancelled at {done}", file=sys.stderr, flush=True)
        raise
    events.append("slow finished")
    return f"counted {steps}"


@server.tool(name="events")
def recorded_events() -> list[str]:
    """What happened in this process so far."""
    return events


@server.tool()
def show_meta(ctx: Context) -> dict[str, Any]:
    """The ``_meta`` this call arrived with."""
    return dict(ctx.request_context.meta or {})


in_flight = 0
most_in_flight = 0
more_in_flight = anyio.Event()


@server.tool()
async def hold(seconds: float, wait_for: int = 0) -> int:
    """Stay in flight for ``seconds``, or less once ``wait_for`` calls were in flight at
    once; returns the most calls in flight at once so far."""
    global in_flight, most_in_flight, more_in_flight
    in_flight += 1
    if in_flight > most_in_flight:
        most_in_flight = in_flight
        more_in_flight.set()
        more_in_flight = anyio.Event()
    try:
        with anyio.move_on_after(seconds):
            if not wait_for:
                await anyio.sleep(seconds)
            while most_in_flight < wait_for:
                await more_in_flight.wait()
        return most_in_flight
    finally:
        in_flight -= 1


@server.tool()
def pid() -> int:
    """This process's id."""
    return os.getpid()


@server.tool()
def env(name: str) -> str | None:
    """The value of an environment variable in this process."""
    return os.environ.get(name)


@server.tool()
def header(name: str, ctx: Context) -> str | None:
    """The value of a header of the HTTP request this call came in (None over stdio)."""
    request = ctx.request_context.request
    return None if request is None else request.headers.get(name)


@server.tool()
def die() -> str:
    """End the process in the middle of the call."""
    print("dying now", file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
async def grow(ctx: Context) -> str:
    """Add a tool and tell the client its tool list changed."""
    name = f"extra{sum(1 for tool in await server.list_tools() if tool.name.startswith('extra'))}"
    server.add_tool(lambda: "extra!", name=name, description="added at run time")
    await ctx.notify_tools_changed()  # 2026-07-28: subscriptions/listen streams
    if ctx.protocol_version != "2026-07-28":
        await ctx.request_context.session.send_tool_list_changed()  # 2025: the session
    return name


def _add_bad_names() -> None:
    for name in (*BAD_NAMES, LONG_NAME):
        server.add_tool(lambda: "bad", name=name, description="a name the gateway refuses")


async def _serve_stdio_legacy() -> None:
    """Over stdio the first request fixes a connection's era: serve the handshake loop."""
    lowlevel = server._lowlevel_server
    async with stdio_server() as (read, write), lowlevel.lifespan(lowlevel) as state:
        await serve_loop(
            lowlevel,
            read,
            write,
            lifespan_state=state,
            init_options=lowlevel.create_initialization_options(),
        )


def _refuse_discover() -> None:
    async def refuse(ctx: ServerRequestContext[Any], params: types.RequestParams) -> Any:
        raise MCPError(types.METHOD_NOT_FOUND, "Method not found")

    server._lowlevel_server.add_request_handler("server/discover", types.RequestParams, refuse)


def _page_tools(page_size: int) -> None:
    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams
    ) -> types.ListToolsResult:
        tools = sorted(await server.list_tools(), key=lambda tool: tool.name)
        start = int(params.cursor or 0)
        end = start + page_size
        return types.ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )

    server._lowlevel_server.add_request_handler(
        "tools/list", types.PaginatedRequestParams, list_tools
    )


def _announce_list_changed() -> None:
    """Legacy clients learn of ``tools.listChanged`` only from ``initialize``, whose
    options ``MCPServer`` does not expose."""
    lowlevel = server._lowlevel_server
    original = lowlevel.create_initialization_options

    def with_list_changed(
        notification_options: NotificationOptions | None = None, **kwargs: Any
    ) -> Any:
        return original(notification_options or NotificationOptions(tools_changed=True), **kwargs)

    # A patch of a method, with a looser signature than the original's.
    lowlevel.create_initialization_options = with_list_changed  # type: ignore[method-assign,assignment]


async def _serve_http(port: int) -> None:
    app = server.streamable_http_app(host="127.0.0.1")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    # Listening before the port is announced: a client that connects before uvicorn
    # serves waits in the backlog instead of being refused.
    listener.listen(128)
    print(f"port {listener.getsockname()[1]}", flush=True)
    # Streams a client holds open (a listen stream) must not hold up a stop.
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    await uvicorn.Server(config).serve(sockets=[listener])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=("stdio", "http"))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--legacy", action="store_true")
    parser.add_argument("--page-size", type=int, default=0)
    parser.add_argument("--bad-names", action="store_true")
    options = parser.parse_args()
    _announce_list_changed()
    if options.legacy:
        _refuse_discover()
    if options.page_size:
        _page_tools(options.page_size)
    if options.bad_names:
        _add_bad_names()
    if options.transport == "stdio" and options.legacy:
        anyio.run(_serve_stdio_legacy)
    elif options.transport == "stdio":
        server.run("stdio")
    else:
        asyncio.run(_serve_http(options.port))


if __name__ == "__main__":
    main()
