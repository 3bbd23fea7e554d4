"""An MCP server that implements every server scenario of the conformance suite
(``@modelcontextprotocol/conformance``), on the SDK's ``MCPServer``: the tools, resources,
prompts, completion and logging the scenarios name, and SSE resumability (an event store
and a retry interval) for the SEP-1699 ones. Run directly, it passes them all; through
the gateway, what fails is the gateway's.

Run it over Streamable HTTP, printing ``port <n>`` once it listens::

    python -m tests.gateway.mcp_conformance.upstream http [--port N]

(the command line of :mod:`tests.gateway.mcp_upstreams.upstream`, so that one launcher
starts either).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
import warnings
from typing import Any

import anyio
import mcp.types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.prompts.base import Message, UserMessage
from mcp.server.streamable_http import EventCallback, EventMessage, EventStore
from mcp.shared.exceptions import MCPDeprecationWarning

#: A 1x1 PNG and a silent WAV, as the scenarios ask.
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5E"
    "rkJggg=="
)
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
#: The reconnection interval the SSE priming event suggests, in milliseconds.
RETRY_MILLIS = 100

server = MCPServer("plugmesh-conformance-upstream", version="1.0.0", log_level="ERROR")
subscriptions: set[str] = set()


class MemoryEvents(EventStore):
    """Every SSE event of this process, for a client resuming with ``Last-Event-ID``."""

    def __init__(self) -> None:
        self._events: list[tuple[str, types.JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: str, message: types.JSONRPCMessage | None) -> str:
        self._events.append((stream_id, message))
        return str(len(self._events))

    async def replay_events_after(
        self, last_event_id: str, send_callback: EventCallback
    ) -> str | None:
        if not last_event_id.isdigit() or not 0 < int(last_event_id) <= len(self._events):
            return None
        after = int(last_event_id)
        stream = self._events[after - 1][0]
        for number, (stream_id, message) in enumerate(self._events[after:], start=after + 1):
            # A priming event (no message) only carries an id.
            if stream_id == stream and message is not None:
                await send_callback(EventMessage(message, str(number)))
        return stream


# -- tools ----------------------------------------------------------------------------


@server.tool()
def test_simple_text() -> str:
    """Text content."""
    return "This is a simple text response for testing."


@server.tool()
def test_image_content() -> list[types.ImageContent]:
    """Image content."""
    return [types.ImageContent(data=PNG, mime_type="image/png")]


@server.tool()
def test_audio_content() -> list[types.AudioContent]:
    """Audio content."""
    return [types.AudioContent(data=WAV, mime_type="audio/wav")]


@server.tool()
def test_embedded_resource() -> list[types.EmbeddedResource]:
    """An embedded resource."""
    return [_embedded("test://embedded-resource", "This is an embedded resource content.")]


@server.tool()
def test_multiple_content_types() -> list[types.ContentBlock]:
    """Text, image and an embedded resource."""
    return [
        types.TextContent(text="Multiple content types test:"),
        types.ImageContent(data=PNG, mime_type="image/png"),
        _embedded(
            "test://mixed-content-resource", '{"test":"data","value":123}', "application/json"
        ),
    ]


@server.tool()
async def test_tool_with_logging(ctx: Context) -> str:
    """Three info log messages, 50 ms apart."""
    messages = ("Tool execution started", "Tool processing data", "Tool execution completed")
    for number, message in enumerate(messages):
        if number:
            await anyio.sleep(0.05)
        await ctx.info(message)
    return "Tool with logging executed successfully"


@server.tool()
def test_error_handling() -> types.CallToolResult:
    """Always a tool error."""
    text = "This tool intentionally returns an error for testing"
    return types.CallToolResult(is_error=True, content=[types.TextContent(text=text)])


@server.tool()
async def test_tool_with_progress(ctx: Context) -> str:
    """Progress 0, 50 and 100 of 100, 50 ms apart."""
    for done in (0, 50, 100):
        if done:
            await anyio.sleep(0.05)
        await ctx.report_progress(done, 100)
    return "Tool with progress executed successfully"


@server.tool()
async def test_sampling(prompt: str, ctx: Context) -> str:
    """Asks the client's model (a server-to-client request, on the call's stream)."""
    message = types.SamplingMessage(role="user", content=types.TextContent(text=prompt))
    result = await ctx.session.create_message(
        messages=[message], max_tokens=100, related_request_id=ctx.request_id
    )
    text = result.content.text if isinstance(result.content, types.TextContent) else "none"
    return f"LLM response: {text}"


@server.tool()
async def test_elicitation(message: str, ctx: Context) -> str:
    """Asks the user for a name and an e-mail address."""
    schema = {
        "type": "object",
        "properties": {
            "username": {"type": "string", "description": "User's response"},
            "email": {"type": "string", "description": "User's email address"},
        },
        "required": ["username", "email"],
    }
    result = await _elicit(ctx, message, schema)
    return f"User response: action={result.action}, content={json.dumps(result.content)}"


@server.tool()
async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    """Asks with a default for every primitive type (SEP-1034)."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "default": "John Doe"},
            "age": {"type": "integer", "default": 30},
            "score": {"type": "number", "default": 95.5},
            "status": {
                "type": "string",
                "enum": ["active", "inactive", "pending"],
                "default": "active",
            },
            "verified": {"type": "boolean", "default": True},
        },
    }
    return await _elicited(ctx, "Please provide user information", schema)


@server.tool()
async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    """Asks with the five kinds of enum (SEP-1330)."""
    untitled = ["option1", "option2", "option3"]
    titled = [{"const": f"value{n}", "title": f"Option {n}"} for n in (1, 2, 3)]
    schema = {
        "type": "object",
        "properties": {
            "untitledSingle": {"type": "string", "enum": untitled},
            "titledSingle": {"type": "string", "oneOf": titled},
            "legacyEnum": {
                "type": "string",
                "enum": ["opt1", "opt2", "opt3"],
                "enumNames": ["Option One", "Option Two", "Option Three"],
            },
            "untitledMulti": {"type": "array", "items": {"type": "string", "enum": untitled}},
            "titledMulti": {"type": "array", "items": {"anyOf": titled}},
        },
    }
    return await _elicited(ctx, "Please pick options", schema)


@server.tool()
def json_schema_2020_12_tool(name: str | None = None, address: Any = None) -> str:
    """A tool whose input schema uses JSON Schema 2020-12 keywords (its schema is set
    below, after registration)."""
    return f"name={name} address={address}"


@server.tool()
async def test_reconnection(ctx: Context) -> str:
    """Closes its SSE stream mid-call; the client resumes with ``Last-Event-ID``."""
    await ctx.info("Before disconnect")
    await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    await ctx.info("After reconnect")
    return "Reconnection test completed"


async def _elicit(ctx: Context, message: str, schema: dict[str, Any]) -> types.ElicitResult:
    # On the call's own stream: the client may not have opened its GET stream yet.
    result: types.ElicitResult = await ctx.session.elicit_form(
        message, schema, related_request_id=ctx.request_id
    )
    return result


async def _elicited(ctx: Context, message: str, schema: dict[str, Any]) -> str:
    result = await _elicit(ctx, message, schema)
    return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"


def _embedded(uri: str, text: str, mime_type: str = "text/plain") -> types.EmbeddedResource:
    return types.EmbeddedResource(
        resource=types.TextResourceContents(uri=uri, mime_type=mime_type, text=text)
    )


def _set_json_schema_2020_12() -> None:
    tool = server._tool_manager.get_tool("json_schema_2020_12_tool")
    assert tool is not None
    tool.parameters = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "$defs": {
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
            }
        },
        "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
        "additionalProperties": False,
    }


# -- resources, prompts; completion and logging below ------------------------------------


@server.resource("test://static-text", description="A static text resource")
def static_text() -> str:
    return "This is the content of the static text resource."


@server.resource(
    "test://static-binary", description="A static binary resource", mime_type="image/png"
)
def static_binary() -> bytes:
    return base64.b64decode(PNG)


@server.resource(
    "test://template/{id}/data", description="A template resource", mime_type="application/json"
)
def template_data(id: str) -> str:
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


@server.resource("test://watched-resource", description="A resource to subscribe to")
def watched() -> str:
    return "Watched resource content"


@server.prompt(description="A prompt without arguments")
def test_simple_prompt() -> list[Message]:
    return [UserMessage("This is a simple prompt for testing.")]


@server.prompt(description="A prompt with two arguments")
def test_prompt_with_arguments(arg1: str, arg2: str) -> list[Message]:
    return [UserMessage(f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'")]


@server.prompt(description="A prompt embedding a resource")
def test_prompt_with_embedded_resource(resourceUri: str) -> list[Message]:  # noqa: N803
    return [
        UserMessage(_embedded(resourceUri, "Embedded resource content for testing.")),
        UserMessage("Please process the embedded resource above."),
    ]


@server.prompt(description="A prompt with an image")
def test_prompt_with_image() -> list[Message]:
    return [
        UserMessage(types.ImageContent(data=PNG, mime_type="image/png")),
        UserMessage("Please analyze the image above."),
    ]


def _add_handlers() -> None:
    """``MCPServer`` has no decorator for these."""

    async def complete(
        ctx: ServerRequestContext[Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        return types.CompleteResult(completion=types.Completion(values=[], total=0, has_more=False))

    async def set_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        return types.EmptyResult()

    async def subscribe(
        ctx: ServerRequestContext[Any], params: types.SubscribeRequestParams
    ) -> types.EmptyResult:
        subscriptions.add(params.uri)
        return types.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any], params: types.UnsubscribeRequestParams
    ) -> types.EmptyResult:
        subscriptions.discard(params.uri)
        return types.EmptyResult()

    lowlevel = server._lowlevel_server
    lowlevel.add_request_handler("completion/complete", types.CompleteRequestParams, complete)
    lowlevel.add_request_handler("logging/setLevel", types.SetLevelRequestParams, set_level)
    lowlevel.add_request_handler("resources/subscribe", types.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler(
        "resources/unsubscribe", types.UnsubscribeRequestParams, unsubscribe
    )


async def _serve(port: int) -> None:
    app = server.streamable_http_app(
        host="127.0.0.1", event_store=MemoryEvents(), retry_interval=RETRY_MILLIS
    )
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)  # before the port is announced: early clients wait, not refused
    print(f"port {listener.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1)
    await uvicorn.Server(config).serve(sockets=[listener])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=("http",))
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    # The scenarios are of the 2025 revisions, whose logging and sampling 2026-07-28 deprecates.
    warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
    _set_json_schema_2020_12()
    _add_handlers()
    asyncio.run(_serve(options.port))


if __name__ == "__main__":
    main()
