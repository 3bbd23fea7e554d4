"""Plugin RPCs offered as MCP tools: :class:`PluginTools`.

A plugin offers a unary RPC as a tool by marking it with
``(plugmesh.options.v1.tool)``; nothing is configured in the gateway. The registry's
catalog says which plugins offer what, and each such plugin is an MCP server named
after it::

    plugins = PluginTools(lambda: catalog.snapshot, upstreams, signing_key=key)
    plugins.servers()                      # {"audit", "registry", "users"}
    plugins.offered()["audit"]             # the audit's tools, by their own names
    tool = plugins.find("audit", "verify_audit_chain")
    await plugins.call(caller, tool, {"fromSequence": "1"})

A tool's input schema is the JSON Schema of the request message and its
``structuredContent`` the response, both in the proto3 JSON mapping the HTTP API
speaks, their messages and fields described by their comments in the proto. A tool's
description is the option's, else the RPC's leading comment, else "Calls <RPC>.".

A plugin's tools are listed while one of its instances is SERVING. The plugin
gets the caller's signed identity, as from an HTTP call, so its own checks hold; the
RPC's declared access decides who sees the tool (an ACCESS_ADMIN RPC is a tool of
admins only; ACCESS_INTERNAL and streaming RPCs are never offered, with a warning).

A call the plugin refuses (a gRPC status other than UNAVAILABLE or DEADLINE_EXCEEDED)
is a result with ``isError`` that names the status, for the model to read; arguments
that do not fit the request message are one too. A plugin that is down or does not
answer in time is an :class:`~gateway.mcpfront.upstream_errors.UpstreamError`, as an
upstream server's would be.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import mcp.types as types
from google.protobuf import json_format, message, message_factory

from gateway.json_schemas import message_schema
from gateway.mcpfront.paths import SERVER_NAME
from gateway.mcpfront.tool_names import MAX_EXPOSED_NAME_LENGTH, exposed_name
from gateway.mcpfront.toolbox import Caller, CallerKind
from gateway.mcpfront.upstream_errors import (
    UpstreamDied,
    UpstreamNotReady,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.model import Method, Snapshot
from gateway.upstream import NoHealthyInstance, Upstreams
from meshkit.identity import Identity, PrincipalKind, to_metadata
from meshkit.tracing import current_trace
from plugmesh.options.v1 import options_pb2

__all__ = ["PluginTool", "PluginTools", "declared_tools"]

log = logging.getLogger(__name__)

_TOOL_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
# The statuses that mean the plugin could not answer, not that it refused the call.
_UNREACHABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclass(frozen=True)
class PluginTool:
    """One RPC offered as a tool.

    Attributes:
        server: The plugin (mesh service) that serves it: the tool's MCP server.
        tool: The tool as listed on ``/mcp/s/<server>``, under its own name.
        method: The RPC.
        admin_only: Whether only admins see and call it (an ACCESS_ADMIN RPC).
    """

    server: str
    tool: types.Tool
    method: Method
    admin_only: bool

    @property
    def name(self) -> str:
        """The tool's own name."""
        return self.tool.name


def declared_tools(snapshot: Snapshot) -> dict[str, dict[str, PluginTool]]:
    """Every RPC of the snapshot offered as a tool: plugin -> own name -> tool, whatever
    the plugins' health. RPCs that cannot be tools are left out with a warning."""
    found: dict[str, dict[str, PluginTool]] = {}
    for method in snapshot.methods():
        options = method.descriptor.GetOptions()
        if not options.HasExtension(options_pb2.tool):
            continue
        tool = _tool_of(method, options.Extensions[options_pb2.tool])
        if tool is None:
            continue
        tools = found.setdefault(method.service, {})
        if tool.name in tools:
            _skipped(method, f"another RPC of the plugin is already the tool {tool.name!r}")
            continue
        tools[tool.name] = tool
    return found


def _tool_of(method: Method, declared: options_pb2.Tool) -> PluginTool | None:
    """The tool ``method`` offers as ``declared``; None (warned) when it cannot be one."""
    name = declared.name or _snake_case(method.descriptor.name)
    refused = _refusal(method, name)
    if refused is not None:
        _skipped(method, refused)
        return None
    output = message_schema(method.descriptor.output_type, method.comments)
    tool = types.Tool(
        name=name,
        title=declared.title or None,
        description=declared.description or method.comment or f"Calls {method.full_name}.",
        input_schema=message_schema(method.descriptor.input_type, method.comments),
        output_schema=output if output.get("type") == "object" else None,
        annotations=_annotations(method, declared),
    )
    admin_only = method.access == options_pb2.ACCESS_ADMIN
    return PluginTool(method.service, tool, method, admin_only=admin_only)


def _refusal(method: Method, name: str) -> str | None:
    """Why ``method`` cannot be the tool ``name``; None when it can."""
    exposed = exposed_name(method.service, name)
    if method.client_streaming or method.server_streaming:
        return "only unary RPCs can be tools"
    if method.access == options_pb2.ACCESS_INTERNAL:
        return "an ACCESS_INTERNAL RPC is never offered to callers"
    if not SERVER_NAME.fullmatch(method.service):
        return f"the plugin's name {method.service!r} is not a server name"
    if not _TOOL_NAME.fullmatch(name):
        return f"the tool name {name!r} has characters outside [A-Za-z0-9_.-]"
    if len(exposed) > MAX_EXPOSED_NAME_LENGTH:
        return f"{exposed!r} is longer than {MAX_EXPOSED_NAME_LENGTH} characters"
    return None


def _annotations(method: Method, declared: options_pb2.Tool) -> types.ToolAnnotations:
    """The declared hints, and those the RPC's idempotency level implies."""
    options = method.descriptor.GetOptions()
    no_side_effects = options.idempotency_level == options.NO_SIDE_EFFECTS
    idempotent = no_side_effects or options.idempotency_level == options.IDEMPOTENT
    return types.ToolAnnotations(
        title=declared.title or None,
        read_only_hint=declared.read_only if declared.HasField("read_only") else no_side_effects,
        destructive_hint=declared.destructive if declared.HasField("destructive") else None,
        idempotent_hint=declared.idempotent if declared.HasField("idempotent") else idempotent,
        open_world_hint=declared.open_world if declared.HasField("open_world") else False,
    )


def _snake_case(name: str) -> str:
    """``ListAuditEntries`` -> ``list_audit_entries``."""
    return _WORD_START.sub("_", name).lower()


def _skipped(method: Method, reason: str) -> None:
    log.warning(
        "an RPC marked as an MCP tool is not offered",
        extra={"rpc": method.full_name, "service": method.service, "reason": reason},
    )


class PluginTools:
    """The tools the plugins offer, from the catalog's current snapshot.

    Args:
        snapshot: The catalog's current snapshot (read on every use).
        upstreams: The gateway's calls to the plugins.
        signing_key: Signs the caller's identity for the plugin; None sends none.
        timeout_seconds: Each call's deadline.
    """

    def __init__(
        self,
        snapshot: Callable[[], Snapshot],
        upstreams: Upstreams,
        *,
        signing_key: bytes | None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self._snapshot = snapshot
        self._upstreams = upstreams
        self._key = signing_key
        self._timeout = timeout_seconds
        # (schema generation, every declared tool), (generation, those offered now)
        self._declared: tuple[int, dict[str, dict[str, PluginTool]]] = (-1, {})
        self._offered: tuple[int, dict[str, dict[str, PluginTool]]] = (-1, {})

    def offered(self) -> dict[str, dict[str, PluginTool]]:
        """The tools of the plugins that have a SERVING instance: plugin -> name -> tool
        (the same object until the catalog changes; do not change it)."""
        snapshot = self._snapshot()
        if self._offered[0] == snapshot.generation:
            return self._offered[1]
        generation, declared = self._declared
        if generation != snapshot.schema_generation:
            declared = declared_tools(snapshot)
            self._declared = (snapshot.schema_generation, declared)
        offered = {
            server: tools
            for server, tools in declared.items()
            if (service := snapshot.service(server)) is not None and service.serving
        }
        self._offered = (snapshot.generation, offered)
        return offered

    def servers(self) -> frozenset[str]:
        """The plugins whose tools are offered now."""
        return frozenset(self.offered())

    def find(self, server: str, name: str) -> PluginTool | None:
        """The tool ``name`` of ``server``, if offered now."""
        return self.offered().get(server, {}).get(name)

    async def call(
        self, caller: Caller, tool: PluginTool, arguments: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call ``tool``'s RPC for ``caller`` with ``arguments`` as its request.

        Raises:
            UpstreamNotReady: No instance of the plugin serves.
            UpstreamDied: The plugin became unreachable during the call (UNAVAILABLE).
            UpstreamTimeout: It did not answer in time.
            UpstreamProtocolError: Its answer does not decode as the response message.
        """
        descriptor = tool.method.descriptor
        try:
            request = json_format.ParseDict(
                dict(arguments), message_factory.GetMessageClass(descriptor.input_type)()
            )
        except json_format.ParseError as exc:
            return _error(f"the arguments do not fit {descriptor.input_type.full_name}: {exc}")
        try:
            reply = await self._upstreams.unary(
                tool.method,
                request.SerializeToString(),
                timeout_seconds=self._timeout,
                metadata=self._metadata(caller),
            )
        except NoHealthyInstance:
            raise UpstreamNotReady(
                f"{tool.server}: no instance serves",
                server=tool.server,
                tool=tool.name,
                state="unavailable",
                last_error="",
            ) from None
        except grpc.aio.AioRpcError as exc:
            if exc.code() in _UNREACHABLE:
                raise self._unreachable(tool, exc) from None
            return _error(f"{exc.code().name}: {exc.details()}")
        try:
            response = message_factory.GetMessageClass(descriptor.output_type)
            return _result(tool, response.FromString(reply.body))
        except message.DecodeError as exc:
            raise UpstreamProtocolError(
                f"{tool.server}: {tool.name} answered what is not a "
                f"{descriptor.output_type.full_name}: {exc}",
                server=tool.server,
                tool=tool.name,
            ) from None

    def _metadata(self, caller: Caller) -> tuple[tuple[str, str], ...]:
        """The caller's signed identity and the call's trace context."""
        trace = current_trace()
        # The call's context as it is: the plugin's server span continues it, and with
        # traces on the call is a client span in between (meshkit.client_spans).
        metadata = tuple(trace.headers().items()) if trace is not None else ()
        if self._key is None:
            return metadata
        kind = PrincipalKind.USER if caller.kind is CallerKind.PERSON else PrincipalKind.MACHINE
        identity = Identity(kind, caller.id, admin=caller.admin, email=caller.email)
        return (*metadata, *to_metadata(identity, self._key))

    def _unreachable(self, tool: PluginTool, exc: grpc.aio.AioRpcError) -> Exception:
        """The upstream error of a call the plugin did not answer."""
        if exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED:
            return UpstreamTimeout(
                f"{tool.server}: {tool.name} did not answer within {self._timeout:g} s",
                server=tool.server,
                tool=tool.name,
                timeout_seconds=self._timeout,
            )
        return UpstreamDied(
            f"{tool.server}: {tool.name} failed: {exc.details()}",
            server=tool.server,
            tool=tool.name,
        )


def _result(tool: PluginTool, response: message.Message) -> dict[str, Any]:
    """The tool's result: the response as JSON text, and as ``structuredContent`` when
    the tool declares an output schema."""
    value = json_format.MessageToDict(response, always_print_fields_with_no_presence=True)
    result: dict[str, Any] = {
        "content": [{"type": "text", "text": json.dumps(value, ensure_ascii=False)}],
        "isError": False,
    }
    if tool.tool.output_schema is not None:
        result["structuredContent"] = value
    return result


def _error(text: str) -> dict[str, Any]:
    """A result that tells the model the call failed, and why."""
    return {"content": [{"type": "text", "text": text}], "isError": True}
