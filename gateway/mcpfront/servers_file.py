"""The upstream MCP servers from a file, in the ``mcpServers`` format MCP clients use.

``PLUGMESH_GATEWAY_MCP_SERVERS_FILE`` names a JSON file, read once when the gateway
starts, that seeds the admin API's database (:mod:`gateway.mcpservers`)::

    {"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "some-server"], "env": {"TOKEN": "…"},
                  "cwd": "/srv", "excludeTools": ["delete_*"]},
        "search": {"url": "https://search.example.com/mcp",
                   "headers": {"Authorization": "Bearer …"}, "callTimeoutSeconds": 30}
    }}

A server has ``command`` (stdio: ``args``, ``env``, ``cwd``) or ``url`` (Streamable
HTTP: ``headers``), and may have plugmesh's ``enabled``, ``includeTools``,
``excludeTools``, ``callTimeoutSeconds`` and ``maxConcurrentCalls``. Anything else (a
client's ``type``, ``disabled``…) is refused, so a typo does not pass unnoticed; a bad
file stops the gateway with :class:`ServersFileError` naming the server and field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.mcpfront.spec import (
    DEFAULT_CALL_TIMEOUT_SECONDS,
    DEFAULT_MAX_CONCURRENT_CALLS,
    HttpTransport,
    StdioTransport,
    Transport,
    UpstreamSpec,
)

__all__ = ["ServersFileError", "load_servers", "parse_servers"]

_STDIO_KEYS = frozenset({"command", "args", "env", "cwd"})
_HTTP_KEYS = frozenset({"url", "headers"})
_PLUGMESH_KEYS = frozenset(
    {"enabled", "includeTools", "excludeTools", "callTimeoutSeconds", "maxConcurrentCalls"}
)


class ServersFileError(ValueError):
    """The servers file cannot be used; the message names the file, server and field."""


def load_servers(path: str | Path) -> tuple[UpstreamSpec, ...]:
    """The servers of the file at ``path``, sorted by name.

    Raises:
        ServersFileError: It cannot be read, is not JSON, or describes a server wrongly.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ServersFileError(f"{path}: cannot be read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ServersFileError(f"{path}: not JSON: {exc}") from None
    return parse_servers(data, source=str(path))


def parse_servers(data: Any, *, source: str = "servers file") -> tuple[UpstreamSpec, ...]:
    """The servers of a parsed ``{"mcpServers": {...}}`` document, sorted by name.

    Raises:
        ServersFileError: The document describes a server wrongly.
    """
    if not isinstance(data, dict) or not isinstance(data.get("mcpServers"), dict):
        raise ServersFileError(f'{source}: must be an object with an "mcpServers" object')
    specs = []
    for name, server in sorted(data["mcpServers"].items()):
        where = f"{source}: mcpServers.{name}"
        if not isinstance(server, dict):
            raise ServersFileError(f"{where}: must be an object")
        try:
            specs.append(_spec(name, server, where))
        except ValueError as exc:
            if isinstance(exc, ServersFileError):
                raise
            raise ServersFileError(f"{where}: {exc}") from None
    return tuple(specs)


def _spec(name: str, server: Mapping[str, Any], where: str) -> UpstreamSpec:
    unknown = sorted(set(server) - _STDIO_KEYS - _HTTP_KEYS - _PLUGMESH_KEYS)
    if unknown:
        raise ServersFileError(f"{where}.{unknown[0]}: is not a known field")
    slots = _get(server, "maxConcurrentCalls", int, DEFAULT_MAX_CONCURRENT_CALLS, where)
    if slots < 1:
        raise ServersFileError(f"{where}.maxConcurrentCalls: must be at least 1, not {slots}")
    return UpstreamSpec(
        name=name,
        transport=_transport(server, where),
        enabled=_get(server, "enabled", bool, True, where),
        include_tools=_strings(server, "includeTools", where),
        exclude_tools=_strings(server, "excludeTools", where),
        call_timeout_seconds=_number(
            server, "callTimeoutSeconds", DEFAULT_CALL_TIMEOUT_SECONDS, where
        ),
        max_concurrent_calls=slots,
    )


def _transport(server: Mapping[str, Any], where: str) -> Transport:
    stdio = _STDIO_KEYS & set(server)
    http = _HTTP_KEYS & set(server)
    if "command" in server and "url" in server:
        raise ServersFileError(f"{where}: has both command and url; a server has one")
    if "command" in server:
        if http:
            raise ServersFileError(f"{where}.{sorted(http)[0]}: belongs to a url server")
        command = _get(server, "command", str, "", where)
        try:
            return StdioTransport(
                command=command,
                args=_strings(server, "args", where),
                env=_string_map(server, "env", where),
                cwd=_get(server, "cwd", str, None, where),
            )
        except ValueError as exc:
            raise ServersFileError(f"{where}.{_field_of(exc, 'command')}: {exc}") from None
    if "url" in server:
        if stdio:
            raise ServersFileError(f"{where}.{sorted(stdio)[0]}: belongs to a command server")
        try:
            return HttpTransport(
                url=_get(server, "url", str, "", where),
                headers=_string_map(server, "headers", where),
            )
        except ValueError as exc:
            raise ServersFileError(f"{where}.url: {exc}") from None
    raise ServersFileError(f"{where}: needs command (stdio) or url (Streamable HTTP)")


def _field_of(exc: ValueError, default: str) -> str:
    return "env" if "transport.env" in str(exc) else default


def _get(server: Mapping[str, Any], key: str, kind: type, default: Any, where: str) -> Any:
    if key not in server:
        return default
    value = server[key]
    # bool is an int in Python; a count or a timeout must not be true.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ServersFileError(f"{where}.{key}: must be {_KINDS[kind]}, not {value!r}")
    return value


def _number(server: Mapping[str, Any], key: str, default: float, where: str) -> float:
    value = server.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ServersFileError(f"{where}.{key}: must be a number, not {value!r}")
    if not value > 0:
        raise ServersFileError(f"{where}.{key}: must be positive, not {value!r}")
    return float(value)


def _strings(server: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    value = server.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ServersFileError(f"{where}.{key}: must be a list of strings, not {value!r}")
    return tuple(value)


def _string_map(server: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    value = server.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        # The values may be secrets: never shown.
        raise ServersFileError(f"{where}.{key}: must be an object of strings")
    return dict(value)


_KINDS: Mapping[type, str] = {
    bool: "true or false",
    int: "a whole number",
    str: "a string",
}
