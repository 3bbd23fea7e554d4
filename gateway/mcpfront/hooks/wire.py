"""What hooks are sent and answer, in ``plugmesh.mcp.v1`` messages, and the result
changes they ask for: JSON to ``Struct`` and back, a call as a hook sees it, a result
checked to be a ``CallToolResult``, redaction by JSON Pointer and by value."""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import mcp.types as types
import pydantic
from google.protobuf import json_format, struct_pb2

from gateway.mcpfront.tool_names import exposed_name
from gateway.mcpfront.toolbox import Caller, CallerKind
from meshkit.tracing import TraceContext
from plugmesh.mcp.v1 import hooks_pb2, servers_pb2

__all__ = [
    "DENIED_BY",
    "REDACTED",
    "BadAnswer",
    "HookedCall",
    "caller_message",
    "checked_result",
    "error_result",
    "from_struct",
    "redacted",
    "to_struct",
    "tool_message",
]

#: What stands for a redacted value when a hook names no replacement.
REDACTED = "[redacted]"


class BadAnswer(ValueError):
    """A hook answered what the gateway cannot apply (a result that is no
    ``CallToolResult``); it counts as the hook's failure."""


@dataclass(frozen=True)
class HookedCall:
    """A ``tools/call`` as the hooks see it.

    Attributes:
        call_id: The call's identifier, as in its events.
        caller: Who calls.
        server: The upstream server.
        tool: The tool's own name on ``server``.
        definition: The tool as the server lists it, when it is listed.
        session_id: The caller's MCP session, "" when it has none.
        protocol_version: The MCP revision the caller speaks, "" when it did not say.
        trace: The call's trace context.
    """

    call_id: str
    caller: Caller
    server: str
    tool: str
    definition: types.Tool | None = None
    session_id: str = ""
    protocol_version: str = ""
    trace: TraceContext | None = None

    def message(
        self, arguments: Mapping[str, Any], attributes: Mapping[str, str]
    ) -> hooks_pb2.ToolCall:
        """The call as ``plugmesh.mcp.v1.ToolCall``, with these arguments and attributes."""
        message = hooks_pb2.ToolCall()
        message.CopyFrom(self._unchanging)
        message.arguments.CopyFrom(to_struct(arguments))
        message.attributes.update(attributes)
        return message

    @functools.cached_property
    def _unchanging(self) -> hooks_pb2.ToolCall:
        """What every hook of the call is sent alike, made once."""
        return hooks_pb2.ToolCall(
            call_id=self.call_id,
            caller=caller_message(self.caller),
            server=self.server,
            tool=tool_message(self.server, self.tool, self.definition),
            session_id=self.session_id,
            protocol_version=self.protocol_version,
            traceparent=self.trace.traceparent if self.trace else "",
        )


_KINDS = {
    CallerKind.PERSON: hooks_pb2.CALLER_KIND_PERSON,
    CallerKind.MACHINE: hooks_pb2.CALLER_KIND_MACHINE,
}


def caller_message(caller: Caller) -> hooks_pb2.Caller:
    """The caller as ``plugmesh.mcp.v1.Caller``."""
    return hooks_pb2.Caller(
        kind=_KINDS[caller.kind],
        id=caller.id,
        display_name=caller.email,
        admin=caller.admin or caller.permissions.admin,
    )


def tool_message(server: str, name: str, tool: types.Tool | None) -> servers_pb2.Tool:
    """The tool's definition as ``plugmesh.mcp.v1.Tool`` (only its names when unknown)."""
    message = servers_pb2.Tool(name=name, exposed_name=exposed_name(server, name))
    if tool is None:
        return message
    message.title = tool.title or ""
    message.description = tool.description or ""
    message.input_schema.CopyFrom(to_struct(tool.input_schema))
    if tool.output_schema is not None:
        message.output_schema.CopyFrom(to_struct(tool.output_schema))
    if tool.annotations is not None:
        annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True)
        message.annotations.CopyFrom(to_struct(annotations))
    return message


def to_struct(value: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON object as a ``Struct``."""
    struct = struct_pb2.Struct()
    json_format.ParseDict(dict(value), struct)
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a JSON object. Its numbers come back as floats, whole ones as ints
    (a ``Struct`` keeps only doubles)."""
    value = json_format.MessageToDict(struct)
    return _whole_numbers(value)  # type: ignore[no-any-return]


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def checked_result(result: dict[str, Any], tool: types.Tool | None) -> dict[str, Any]:
    """``result``, a result a hook gave or changed, once it is a ``CallToolResult`` that
    ``tool`` may answer: one with structured content when the tool declares an output
    schema (unless it is an error), since clients refuse a result without.

    Raises:
        BadAnswer: It is not.
    """
    try:
        types.CallToolResult.model_validate(result)
    except pydantic.ValidationError as exc:
        problems = "; ".join(error["msg"] for error in exc.errors()[:3])
        raise BadAnswer(f"its result is not an MCP CallToolResult: {problems}") from None
    declared = tool is not None and tool.output_schema is not None
    structured = isinstance(result.get("structuredContent"), dict)
    if declared and not structured and result.get("isError") is not True:
        raise BadAnswer("its result lacks the structuredContent the tool's schema declares")
    return result


#: The ``_meta`` key of a result a hook denied, naming the hook.
DENIED_BY = "dev.plugmesh/deniedBy"


def error_result(reason: str, hook: str) -> dict[str, Any]:
    """The result a caller gets for a call or result ``hook`` denied: the reason, as a
    tool error a model can read, and the hook in ``_meta``."""
    return {
        "content": [{"type": "text", "text": reason}],
        "isError": True,
        "_meta": {DENIED_BY: hook},
    }


def redacted(result: Mapping[str, Any], redact: hooks_pb2.Redact) -> dict[str, Any]:
    """``result`` with what ``redact`` names replaced: the values at its JSON Pointers
    (a pointer to nothing is ignored), and its values wherever they occur in the result's
    data: the text of its content blocks (embedded resources' too), any string of its
    structured content and of the ``_meta`` of the result and of its blocks. Types, MIME
    types and URIs keep their form.

    What a pointer removed does not survive elsewhere: the text blocks mirror structured
    content (the specification asks tools to), so each string of at least
    :data:`_SHORTEST` characters that a pointer removed is also replaced wherever it
    occurs, and a text block that was the structured content as JSON is written again
    from the redacted structured content."""
    replacement = redact.replacement or REDACTED
    changed: Any = dict(result)
    for pointer in redact.json_pointers:
        changed = _replace_at(changed, _tokens(pointer), replacement)
    removed = [s for s in _strings(result, redact.json_pointers) if len(s) >= _SHORTEST]
    values = tuple(value for value in (*redact.values, *removed) if value)
    structured = result.get("structuredContent")
    mirror = _json(structured) if changed.get("structuredContent") != structured else None
    content = [_mirrored(block, mirror, changed) for block in changed.get("content", [])]
    if values:
        content = [_block(block, values, replacement) for block in content]
        if "structuredContent" in changed:
            structured = changed["structuredContent"]
            changed["structuredContent"] = _replace_values(structured, values, replacement)
        if "_meta" in changed:
            changed["_meta"] = _replace_values(changed["_meta"], values, replacement)
    if "content" in result:
        changed["content"] = content
    return changed  # type: ignore[no-any-return]


#: The shortest string a pointer removed that is also replaced elsewhere (a shorter one,
#: "a" or "no", would mangle the text around it).
_SHORTEST = 4


def _strings(result: Mapping[str, Any], pointers: Sequence[str]) -> tuple[str, ...]:
    """Every string at or under ``pointers`` in ``result``."""
    found: list[str] = []
    for pointer in pointers:
        tokens = _tokens(pointer)
        value: Any = result if tokens else None
        for token in tokens or []:
            if isinstance(value, dict):
                value = value.get(token)
            elif isinstance(value, list) and token.isdigit() and int(token) < len(value):
                value = value[int(token)]
            else:
                value = None
        found.extend(_leaves(value))
    return tuple(found)


def _leaves(value: Any) -> list[str]:
    """The strings in ``value``, nested ones included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _leaves(item)]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return []


def _json(value: Any) -> Any:
    """``value`` as a JSON text would decode it again, to compare with a text block."""
    return json.loads(json.dumps(value))


def _mirrored(block: Any, mirror: Any, changed: Mapping[str, Any]) -> Any:
    """A text block that was ``mirror`` (the structured content before a pointer changed
    it) as JSON, written again from the changed structured content; others unchanged."""
    if mirror is None or not isinstance(block, dict) or not isinstance(block.get("text"), str):
        return block
    try:
        was = json.loads(block["text"])
    except ValueError:
        return block
    if was != mirror:
        return block
    return {**block, "text": json.dumps(changed.get("structuredContent"), ensure_ascii=False)}


def _block(block: Any, values: tuple[str, ...], replacement: str) -> Any:
    """A content block with ``values`` replaced in its text."""
    if not isinstance(block, dict):
        return block
    changed = dict(block)
    if isinstance(block.get("_meta"), dict):
        changed["_meta"] = _replace_values(block["_meta"], values, replacement)
    if isinstance(block.get("text"), str):
        changed["text"] = _replace_values(block["text"], values, replacement)
    resource = block.get("resource")
    if isinstance(resource, dict) and isinstance(resource.get("text"), str):
        changed["resource"] = {
            **resource,
            "text": _replace_values(resource["text"], values, replacement),
        }
    return changed


def _replace_values(value: Any, values: tuple[str, ...], replacement: str) -> Any:
    if isinstance(value, str):
        for secret in values:
            value = value.replace(secret, replacement)
        return value
    if isinstance(value, dict):
        return {key: _replace_values(item, values, replacement) for key, item in value.items()}
    if isinstance(value, list):
        return [_replace_values(item, values, replacement) for item in value]
    return value


def _tokens(pointer: str) -> list[str] | None:
    """The reference tokens of an RFC 6901 pointer; None when it is malformed."""
    if pointer == "":
        return None  # the whole result: not a part of it
    if not pointer.startswith("/"):
        return None
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _replace_at(value: Any, tokens: list[str] | None, replacement: str) -> Any:
    """``value`` with the part at ``tokens`` replaced; unchanged when there is none."""
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if isinstance(value, dict) and head in value:
        inner = replacement if not rest else _replace_at(value[head], rest, replacement)
        return {**value, head: inner}
    if isinstance(value, list) and head.isdigit() and int(head) < len(value):
        index = int(head)
        inner = replacement if not rest else _replace_at(value[index], rest, replacement)
        return [*value[:index], inner, *value[index + 1 :]]
    return value
