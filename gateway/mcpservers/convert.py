"""``plugmesh.mcp.v1`` messages ↔ the admin API's objects, with validation that names the
field that is wrong.

A server never leaves as protobuf with its secrets: ``env`` and ``headers`` are
write-only, their names go out as ``env_names`` and ``header_names``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any

import mcp.types as types
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from gateway.mcpfront.spec import (
    DEFAULT_CALL_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENT_CALLS,
    NAME_PATTERN,
    HttpTransport,
    StdioTransport,
    Transport,
    UpstreamSpec,
)
from gateway.mcpfront.upstream import State, UpstreamStatus
from gateway.mcpservers.model import MAX_DESCRIPTION_LENGTH, McpServer
from meshkit.errors import invalid_field
from plugmesh.mcp.v1 import servers_pb2

__all__ = [
    "changed_server",
    "new_server",
    "served_tools",
    "server_to_proto",
    "status_to_proto",
    "valid_name",
]

MAX_CALL_TIMEOUT_SECONDS = 3600.0
MAX_CONCURRENT_CALLS = 1000
_MAX_GLOBS = 100
_MAX_GLOB_LENGTH = 128
_MAX_STRING = 4096
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# Headers the transport sets itself, or that would change how the request is framed.
_RESERVED_HEADERS = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "mcp-protocol-version",
        "mcp-session-id",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_STATES = {
    State.CONNECTING: servers_pb2.SERVER_STATE_CONNECTING,
    State.READY: servers_pb2.SERVER_STATE_READY,
    State.FAILING: servers_pb2.SERVER_STATE_FAILING,
    State.DISABLED: servers_pb2.SERVER_STATE_DISABLED,
}
_SIMPLE_PATHS = (
    "description",
    "enabled",
    "include_tools",
    "exclude_tools",
    "call_timeout",
    "max_concurrent_calls",
)
_TRANSPORT_PATHS = {
    "stdio": ("command", "args", "env", "cwd"),
    "streamable_http": ("url", "headers"),
}


# --- out ----------------------------------------------------------------------------


def server_to_proto(
    server: McpServer, status: UpstreamStatus | None = None
) -> servers_pb2.McpServer:
    """``server`` as the API shows it: no secret values; with ``status`` when given."""
    spec = server.spec
    message = servers_pb2.McpServer(
        name=spec.name,
        description=server.description,
        enabled=spec.enabled,
        include_tools=spec.include_tools,
        exclude_tools=spec.exclude_tools,
        call_timeout=_duration(spec.call_timeout_seconds),
        max_concurrent_calls=spec.max_concurrent_calls,
        create_time=_timestamp(server.create_time),
        update_time=_timestamp(server.update_time),
    )
    transport = spec.transport
    if isinstance(transport, StdioTransport):
        message.stdio.command = transport.command
        message.stdio.args.extend(transport.args)
        message.stdio.env_names.extend(sorted(transport.env))
        message.stdio.cwd = transport.cwd or ""
    else:
        message.streamable_http.url = transport.url
        message.streamable_http.header_names.extend(sorted(transport.headers))
    if status is not None:
        message.status.CopyFrom(status_to_proto(status))
    return message


def status_to_proto(status: UpstreamStatus) -> servers_pb2.ServerStatus:
    """What a replica sees of a server: its tools count only while they are served."""
    message = servers_pb2.ServerStatus(
        state=_STATES.get(status.state, servers_pb2.SERVER_STATE_UNSPECIFIED),
        last_error=status.last_error,
        tool_count=len(served_tools(status)),
        skipped_tools=[
            servers_pb2.SkippedTool(name=skipped.name, reason=skipped.reason)
            for skipped in status.skipped
        ],
    )
    if status.tools_fetch_time is not None:
        message.tools_fetch_time.CopyFrom(_timestamp(status.tools_fetch_time))
    return message


def served_tools(status: UpstreamStatus) -> tuple[types.Tool, ...]:
    """The tools a server's status says are served: its last fetched ones while READY."""
    return status.tools if status.state is State.READY else ()


# --- in -----------------------------------------------------------------------------


def valid_name(name: str, field: str = "name") -> str:
    """``name`` when it is a server name."""
    if not name:
        raise invalid_field(field, "is required")
    if not NAME_PATTERN.fullmatch(name):
        raise invalid_field(
            field, "must be lower-case letters, digits and '-', up to 31, not starting with '-'"
        )
    return name


def new_server(message: servers_pb2.McpServer, field: str = "server") -> tuple[UpstreamSpec, str]:
    """The spec and description of a server to add; output-only fields are ignored."""
    name = valid_name(message.name, f"{field}.name")
    kind = message.WhichOneof("transport")
    if kind is None:
        raise invalid_field(f"{field}.stdio", "or streamable_http is required")
    spec = UpstreamSpec(
        name=name,
        transport=_transport(message, kind, field),
        enabled=message.enabled if message.HasField("enabled") else True,
        include_tools=_globs(message.include_tools, f"{field}.include_tools"),
        exclude_tools=_globs(message.exclude_tools, f"{field}.exclude_tools"),
        call_timeout_seconds=_call_timeout(message, field),
        max_concurrent_calls=_max_concurrent(message.max_concurrent_calls, field),
    )
    return spec, _description(message.description, field)


def changed_server(
    old: McpServer,
    message: servers_pb2.McpServer,
    mask: field_mask_pb2.FieldMask,
    field: str = "server",
) -> McpServer:
    """``old`` with the fields of ``message`` that ``mask`` names; an empty mask names every
    field ``message`` sets (a transport replaces the whole transport, secrets included).
    """
    paths = list(mask.paths) or _set_paths(message)
    spec, description = old.spec, old.description
    for path in paths:
        if path == "name":
            raise invalid_field("update_mask", "cannot change name: a server's name is immutable")
        if path in ("status", "create_time", "update_time"):
            raise invalid_field("update_mask", f"{path} is output only")
        if path == "description":
            description = _description(message.description, field)
        elif path == "enabled":
            enabled = message.enabled if message.HasField("enabled") else True
            spec = dataclasses.replace(spec, enabled=enabled)
        elif path == "include_tools":
            spec = dataclasses.replace(
                spec, include_tools=_globs(message.include_tools, f"{field}.include_tools")
            )
        elif path == "exclude_tools":
            spec = dataclasses.replace(
                spec, exclude_tools=_globs(message.exclude_tools, f"{field}.exclude_tools")
            )
        elif path == "call_timeout":
            spec = dataclasses.replace(spec, call_timeout_seconds=_call_timeout(message, field))
        elif path == "max_concurrent_calls":
            spec = dataclasses.replace(
                spec, max_concurrent_calls=_max_concurrent(message.max_concurrent_calls, field)
            )
        elif path in _TRANSPORT_PATHS:
            if message.WhichOneof("transport") != path:
                raise invalid_field(f"{field}.{path}", "is required when update_mask names it")
            spec = dataclasses.replace(spec, transport=_transport(message, path, field))
        else:
            spec = dataclasses.replace(spec, transport=_transport_part(spec, message, path, field))
    return dataclasses.replace(old, spec=spec, description=description)


def _set_paths(message: servers_pb2.McpServer) -> list[str]:
    paths = [
        path
        for path, given in (
            ("description", bool(message.description)),
            ("enabled", message.HasField("enabled")),
            ("include_tools", bool(message.include_tools)),
            ("exclude_tools", bool(message.exclude_tools)),
            ("call_timeout", message.HasField("call_timeout")),
            ("max_concurrent_calls", message.max_concurrent_calls != 0),
        )
        if given
    ]
    kind = message.WhichOneof("transport")
    if kind is not None:
        paths.append(kind)
    return paths


def _transport_part(
    spec: UpstreamSpec, message: servers_pb2.McpServer, path: str, field: str
) -> Transport:
    kind, _, part = path.partition(".")
    if kind not in _TRANSPORT_PATHS or part not in _TRANSPORT_PATHS[kind]:
        raise invalid_field("update_mask", f"{path!r} is not a field of McpServer that can change")
    current = spec.transport
    uses = "stdio" if isinstance(current, StdioTransport) else "streamable_http"
    if kind != uses:
        raise invalid_field(
            "update_mask", f"{path!r}: the server uses {uses}; replace the whole transport instead"
        )
    if isinstance(current, StdioTransport):
        stdio = message.stdio
        values: dict[str, Any] = {
            "command": lambda: _stdio_command(stdio.command, field),
            "args": lambda: _strings(stdio.args, f"{field}.stdio.args"),
            "env": lambda: _env(stdio.env, f"{field}.stdio.env"),
            "cwd": lambda: _string(stdio.cwd, f"{field}.stdio.cwd") or None,
        }
        return dataclasses.replace(current, **{part: values[part]()})
    assert isinstance(current, HttpTransport)
    http = message.streamable_http
    if part == "url":
        return _http(http.url, current.headers, field)
    return _http(current.url, _headers(http.headers, f"{field}.streamable_http.headers"), field)


def _transport(message: servers_pb2.McpServer, kind: str, field: str) -> Transport:
    if kind == "stdio":
        stdio = message.stdio
        return StdioTransport(
            command=_stdio_command(stdio.command, field),
            args=_strings(stdio.args, f"{field}.stdio.args"),
            env=_env(stdio.env, f"{field}.stdio.env"),
            cwd=_string(stdio.cwd, f"{field}.stdio.cwd") or None,
        )
    http = message.streamable_http
    return _http(http.url, _headers(http.headers, f"{field}.streamable_http.headers"), field)


def _http(url: str, headers: Mapping[str, str], field: str) -> HttpTransport:
    if not url:
        raise invalid_field(f"{field}.streamable_http.url", "is required")
    try:
        return HttpTransport(url=_string(url, f"{field}.streamable_http.url"), headers=headers)
    except ValueError:
        raise invalid_field(
            f"{field}.streamable_http.url", "must be an http:// or https:// URL with a host"
        ) from None


def _stdio_command(command: str, field: str) -> str:
    if not command:
        raise invalid_field(f"{field}.stdio.command", "is required")
    return _string(command, f"{field}.stdio.command")


def _string(value: str, field: str) -> str:
    if len(value) > _MAX_STRING:
        raise invalid_field(field, f"is longer than {_MAX_STRING} characters")
    if "\0" in value:
        raise invalid_field(field, "must not contain NUL")
    return value


def _strings(values: Sequence[str], field: str) -> tuple[str, ...]:
    return tuple(_string(value, f"{field}[{i}]") for i, value in enumerate(values))


def _env(env: Mapping[str, str], field: str) -> dict[str, str]:
    for name, value in env.items():
        if not name or "=" in name or "\0" in name:
            raise invalid_field(field, f"{name!r} is not a variable name")
        _string(value, f"{field}[{name}]")
    return dict(env)


def _headers(headers: Mapping[str, str], field: str) -> dict[str, str]:
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            raise invalid_field(field, f"{name!r} is not a header name")
        if name.lower() in _RESERVED_HEADERS:
            raise invalid_field(field, f"{name!r} is set by the transport itself")
        if any(c in value for c in "\r\n\0"):
            raise invalid_field(f"{field}[{name}]", "must not contain CR, LF or NUL")
    return dict(headers)


def _globs(globs: Sequence[str], field: str) -> tuple[str, ...]:
    if len(globs) > _MAX_GLOBS:
        raise invalid_field(field, f"has more than {_MAX_GLOBS} globs")
    for i, glob in enumerate(globs):
        if not glob or len(glob) > _MAX_GLOB_LENGTH:
            raise invalid_field(f"{field}[{i}]", f"must be 1 to {_MAX_GLOB_LENGTH} characters")
    return tuple(globs)


def _description(description: str, field: str) -> str:
    if len(description) > MAX_DESCRIPTION_LENGTH:
        raise invalid_field(
            f"{field}.description", f"is longer than {MAX_DESCRIPTION_LENGTH} characters"
        )
    return description


def _call_timeout(message: servers_pb2.McpServer, field: str) -> float:
    if not message.HasField("call_timeout"):
        return DEFAULT_CALL_TIMEOUT_SECONDS
    timeout = message.call_timeout
    seconds = timeout.seconds + timeout.nanos / 1e9
    if timeout.nanos < 0 or timeout.nanos >= 1_000_000_000 or seconds <= 0:
        raise invalid_field(f"{field}.call_timeout", "must be positive")
    if seconds > MAX_CALL_TIMEOUT_SECONDS:
        raise invalid_field(f"{field}.call_timeout", "must be at most 3600 seconds")
    return seconds


def _max_concurrent(value: int, field: str) -> int:
    if value == 0:
        return DEFAULT_MAX_CONCURRENT_CALLS
    if not 1 <= value <= MAX_CONCURRENT_CALLS:
        raise invalid_field(f"{field}.max_concurrent_calls", f"must be 1 to {MAX_CONCURRENT_CALLS}")
    return value


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(round(seconds * 1e9))
    return duration


def _timestamp(time: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(time)
    return stamp
