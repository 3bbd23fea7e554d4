"""What the gateway knows of one upstream MCP server: an :class:`UpstreamSpec`.

A spec is a frozen value, checked when it is made; the admin API's store fills them in
(:mod:`gateway.mcpservers`), :class:`gateway.mcpfront.federation.Upstreams` runs them::

    UpstreamSpec(
        name="files",
        transport=StdioTransport(command="npx", args=("-y", "some-server"), env={"TOKEN": t}),
        exclude_tools=("delete_*",),
    )
    UpstreamSpec(name="search", transport=HttpTransport(url, headers={"Authorization": a}))

The values of ``env`` and ``headers`` are secrets: ``repr`` shows their names only, so a
spec may be logged as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_CALL_TIMEOUT_SECONDS",
    "DEFAULT_MAX_CONCURRENT_CALLS",
    "INHERITED_VARIABLES",
    "HttpTransport",
    "StdioTransport",
    "Transport",
    "UpstreamSpec",
    "inherited_environment",
]

#: A server's name: lower-case letters, digits and ``-``, up to 31, not starting with ``-``.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")
DEFAULT_CALL_TIMEOUT_SECONDS = 60.0
DEFAULT_MAX_CONCURRENT_CALLS = 16

#: What a stdio server inherits of the gateway's own environment (besides what the SDK
#: always passes: HOME, LOGNAME, PATH, SHELL, TERM, USER); its spec's ``env`` comes on top.
INHERITED_VARIABLES = (
    "HOME",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LOGNAME",
    "PATH",
    "SHELL",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
)


def inherited_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The part of ``environ`` every stdio server gets (:data:`INHERITED_VARIABLES`).

    The gateway's entry point calls it once with ``os.environ``; nothing below it reads
    the environment.
    """
    return {name: environ[name] for name in INHERITED_VARIABLES if name in environ}


def _redacted(values: Mapping[str, str]) -> dict[str, str]:
    return dict.fromkeys(values, "***")


@dataclass(frozen=True)
class StdioTransport:
    """A server the gateway starts as a child process and talks to over its stdin/stdout.

    Attributes:
        command: The program; found on the child's ``PATH`` when it has no ``/``.
        args: Its arguments.
        env: Variables set for the child on top of the inherited ones (secrets: never
            shown by ``repr``).
        cwd: Its working directory; the gateway's when ``None``.
    """

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, hash=False)
    cwd: str | None = None

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError("transport.command must not be empty")
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "env", dict(self.env))
        for name in self.env:
            if not name or "=" in name or "\0" in name:
                raise ValueError(f"transport.env: {name!r} is not a variable name")

    def __repr__(self) -> str:
        return (
            f"StdioTransport(command={self.command!r}, args={self.args!r}, "
            f"env={_redacted(self.env)!r}, cwd={self.cwd!r})"
        )


@dataclass(frozen=True)
class HttpTransport:
    """A server the gateway reaches over Streamable HTTP.

    Attributes:
        url: Its MCP endpoint (``http://`` or ``https://``).
        headers: Sent with every request, e.g. the gateway's own credential for that
            server (secrets: never shown by ``repr``). A caller's token is never sent.
    """

    url: str
    headers: Mapping[str, str] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"transport.url must be an http(s) URL, not {self.url!r}")
        object.__setattr__(self, "headers", dict(self.headers))

    def __repr__(self) -> str:
        return f"HttpTransport(url={self.url!r}, headers={_redacted(self.headers)!r})"


Transport = StdioTransport | HttpTransport


@dataclass(frozen=True)
class UpstreamSpec:
    """One upstream MCP server as the gateway should run it.

    Attributes:
        name: The server's name in exposed tool names (``<name>__<tool>``) and paths.
        transport: How to reach it.
        enabled: A disabled server is known (and shown) but not connected.
        include_tools: Globs (``fnmatch``, case-sensitive) over a tool's own name; only
            matching tools are served. Empty: every tool.
        exclude_tools: Globs; a matching tool is not served, even when included.
        call_timeout_seconds: The longest a call may take, waiting for a free slot
            included.
        max_concurrent_calls: Calls in flight to this server at once; more wait.
    """

    name: str
    transport: Transport
    enabled: bool = True
    include_tools: tuple[str, ...] = ()
    exclude_tools: tuple[str, ...] = ()
    call_timeout_seconds: float = DEFAULT_CALL_TIMEOUT_SECONDS
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(
                f"name {self.name!r} must be lower-case letters, digits and '-' "
                "(up to 31, not starting with '-')"
            )
        if not isinstance(self.transport, StdioTransport | HttpTransport):
            raise ValueError(f"transport must be stdio or streamable HTTP, not {self.transport!r}")
        object.__setattr__(self, "include_tools", tuple(self.include_tools))
        object.__setattr__(self, "exclude_tools", tuple(self.exclude_tools))
        if not self.call_timeout_seconds > 0:
            raise ValueError(
                f"call_timeout_seconds must be positive, not {self.call_timeout_seconds}"
            )
        if self.max_concurrent_calls < 1:
            raise ValueError(
                f"max_concurrent_calls must be at least 1, not {self.max_concurrent_calls}"
            )

    def serves(self, tool: str) -> bool:
        """Whether the include and exclude globs let ``tool`` (its own name) through."""
        if any(fnmatchcase(tool, glob) for glob in self.exclude_tools):
            return False
        return not self.include_tools or any(fnmatchcase(tool, g) for g in self.include_tools)

    def same_connection(self, other: UpstreamSpec) -> bool:
        """Whether ``other`` can keep this spec's connection (only filters or limits differ)."""
        return (
            self.name == other.name
            and self.transport == other.transport
            and self.enabled == other.enabled
        )
