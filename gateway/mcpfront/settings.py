"""Settings of the MCP front, read once at the entry point.

Every variable is listed, with its default and meaning, in :data:`VARIABLES` (and so in
the README's one table). The JWT issuer that the protected resource metadata names as
authorization server is the authentication's ``PLUGMESH_GATEWAY_JWT_ISSUER``.

DNS-rebinding protection (the ``Host`` and ``Origin`` checks of the MCP transport) is on:
the loopback hosts and the host of the resource URL are allowed, plus what
``PLUGMESH_GATEWAY_MCP_ALLOWED_HOSTS`` and ``…_ALLOWED_ORIGINS`` add; ``*`` among the
hosts turns both checks off (a gateway behind a proxy that checks them itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from mcp.server.transport_security import TransportSecuritySettings

from gateway.mcpfront.call_events import CallArguments
from gateway.mcpfront.hooks.declared import HOOK_NAME
from gateway.mcpfront.servers_file import ServersFileError, load_servers
from gateway.mcpfront.spec import UpstreamSpec, inherited_environment
from meshkit.config import ConfigError, env_int

__all__ = ["VARIABLES", "McpSettings"]

RESOURCE_URL = "PLUGMESH_GATEWAY_MCP_RESOURCE_URL"
ALLOWED_HOSTS = "PLUGMESH_GATEWAY_MCP_ALLOWED_HOSTS"
ALLOWED_ORIGINS = "PLUGMESH_GATEWAY_MCP_ALLOWED_ORIGINS"
PAGE_SIZE = "PLUGMESH_GATEWAY_MCP_PAGE_SIZE"
BODY_LIMIT_BYTES = "PLUGMESH_GATEWAY_MCP_BODY_LIMIT_BYTES"
SERVERS_FILE = "PLUGMESH_GATEWAY_MCP_SERVERS_FILE"
CALL_ARGUMENTS = "PLUGMESH_GATEWAY_MCP_CALL_ARGUMENTS"
REQUIRED_HOOKS = "PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS"

#: Every variable: (name, default as shown, meaning), for the README table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        RESOURCE_URL,
        "(from the request)",
        "the MCP endpoint's public URL (`https://mcp.example.com/mcp`), named in the protected"
        " resource metadata and in 401 answers; unset, it is made from each request's `Host`"
        " and scheme",
    ),
    (
        ALLOWED_HOSTS,
        "(loopback)",
        "comma-separated `Host` values `/mcp` accepts (`host`, `host:port`, `host:*`) besides"
        " the loopback ones and the resource URL's; `*` turns the DNS-rebinding checks off",
    ),
    (
        ALLOWED_ORIGINS,
        "(loopback)",
        "comma-separated `Origin` values `/mcp` accepts (`https://app.example.com`, `…:*`)"
        " besides the loopback ones and the resource URL's; requests without `Origin` pass",
    ),
    (PAGE_SIZE, "100", "most tools in one `tools/list` page"),
    (
        BODY_LIMIT_BYTES,
        "4194304",
        "largest MCP request body; larger ones get 413 with a JSON-RPC error",
    ),
    (
        SERVERS_FILE,
        "(none)",
        "a JSON file of the upstream MCP servers, in the `mcpServers` format MCP clients use"
        " (see *Upstream MCP servers*), read at start; unset, `/mcp` serves no tools",
    ),
    (
        CALL_ARGUMENTS,
        "keys",
        "what of a tool call's arguments its `tool.call.started` event (and so the audit"
        " log) records: `keys` (their names, every value `[redacted]`), `full` (as sent)"
        " or `none`",
    ),
    (
        REQUIRED_HOOKS,
        "(none)",
        "comma-separated names of tool-call hook plugins every `tools/call` must pass: while"
        " one is not in the mesh every call is denied, and its failures count as denies"
        " whatever failure mode it declares (see *Tool-call hooks*)",
    ),
)

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class McpSettings:
    """How the gateway serves MCP.

    Attributes:
        resource_url: The MCP endpoint's public URL; None: made from each request.
        allowed_hosts: ``Host`` values accepted besides the loopback ones and the
            resource URL's; ``*`` turns the DNS-rebinding checks off.
        allowed_origins: ``Origin`` values accepted besides the loopback ones and the
            resource URL's.
        page_size: Most tools in one ``tools/list`` page.
        body_limit_bytes: Largest request body.
        servers: The upstream MCP servers (from ``PLUGMESH_GATEWAY_MCP_SERVERS_FILE``).
        child_environment: What a stdio server inherits of the gateway's environment.
        call_arguments: What of a call's arguments its events record.
        required_hooks: The hooks (by plugin name) every call must pass.
    """

    resource_url: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    page_size: int = 100
    body_limit_bytes: int = 4 * 1024 * 1024
    servers: tuple[UpstreamSpec, ...] = ()
    child_environment: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)
    call_arguments: CallArguments = CallArguments.KEYS
    required_hooks: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for name in self.required_hooks:
            if not HOOK_NAME.fullmatch(name):
                raise ConfigError(
                    f"{REQUIRED_HOOKS} must name plugins (lower-case letters, digits, '_' and"
                    f" '-', up to 63), got {name!r}"
                )
        if self.resource_url is not None:
            parts = urlsplit(self.resource_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ConfigError(
                    f"{RESOURCE_URL} must be an http or https URL, got {self.resource_url!r}"
                )
        if self.page_size <= 0:
            raise ConfigError(f"{PAGE_SIZE} must be positive, got {self.page_size}")
        if self.body_limit_bytes <= 0:
            raise ConfigError(f"{BODY_LIMIT_BYTES} must be positive, got {self.body_limit_bytes}")

    @property
    def transport_security(self) -> TransportSecuritySettings:
        """The SDK's ``Host``/``Origin`` checks, as these settings make them."""
        if "*" in self.allowed_hosts:
            return TransportSecuritySettings(enable_dns_rebinding_protection=False)
        hosts = [name for host in _LOOPBACK_HOSTS for name in (host, f"{host}:*")]
        origins = [
            name
            for scheme in ("http", "https")
            for host in _LOOPBACK_HOSTS
            for name in (f"{scheme}://{host}", f"{scheme}://{host}:*")
        ]
        if self.resource_url is not None:
            parts = urlsplit(self.resource_url)
            hosts.append(parts.netloc)
            origins.append(f"{parts.scheme}://{parts.netloc}")
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=[*hosts, *self.allowed_hosts],
            allowed_origins=[*origins, *self.allowed_origins],
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> McpSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        values = os.environ if env is None else env
        defaults = cls()
        servers: tuple[UpstreamSpec, ...] = ()
        if path := (values.get(SERVERS_FILE) or "").strip():
            try:
                servers = load_servers(path)
            except ServersFileError as exc:
                raise ConfigError(f"{SERVERS_FILE}: {exc}") from None
        return cls(
            resource_url=(values.get(RESOURCE_URL) or "").strip().rstrip("/") or None,
            allowed_hosts=_items(values.get(ALLOWED_HOSTS)),
            allowed_origins=_items(values.get(ALLOWED_ORIGINS)),
            page_size=env_int(values, PAGE_SIZE, defaults.page_size, positive=True),
            body_limit_bytes=env_int(
                values,
                BODY_LIMIT_BYTES,
                defaults.body_limit_bytes,
                positive=True,
                unit="a whole number of bytes",
            ),
            servers=servers,
            child_environment=inherited_environment(values),
            call_arguments=_call_arguments(values.get(CALL_ARGUMENTS)),
            required_hooks=frozenset(_items(values.get(REQUIRED_HOOKS))),
        )


def _call_arguments(value: str | None) -> CallArguments:
    wanted = (value or "").strip().lower() or CallArguments.KEYS.value
    try:
        return CallArguments(wanted)
    except ValueError:
        choices = ", ".join(choice.value for choice in CallArguments)
        raise ConfigError(f"{CALL_ARGUMENTS} must be one of {choices}, got {value!r}") from None


def _items(value: str | None) -> tuple[str, ...]:
    return tuple(item.strip() for item in (value or "").split(",") if item.strip())
