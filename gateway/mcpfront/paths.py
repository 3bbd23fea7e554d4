"""The paths the MCP front answers, exactly: nothing under them is served by prefix.

| path | what |
|---|---|
| ``/mcp`` | every server's tools, as ``<server>__<tool>`` |
| ``/mcp/s/<server>`` | one server's tools under their own names |
| ``/.well-known/oauth-protected-resource`` | protected resource metadata (RFC 9728) |
| ``/.well-known/oauth-protected-resource/mcp`` | the same, at the MCP endpoint's own path |

A server name is lower-case letters, digits and ``-``, starting with a letter or digit,
up to 31 characters.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "ENDPOINT",
    "METADATA",
    "METADATA_PATHS",
    "SERVER_NAME",
    "Route",
    "RouteKind",
    "route_of",
]

#: The aggregated MCP endpoint.
ENDPOINT = "/mcp"
#: Where the protected resource metadata of the MCP endpoint is (RFC 9728 §3.1).
METADATA = "/.well-known/oauth-protected-resource" + ENDPOINT
#: Both metadata paths: with the endpoint's path, and at the root for clients that look
#: there first.
METADATA_PATHS = frozenset({"/.well-known/oauth-protected-resource", METADATA})
#: The name of an upstream server.
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}")

_VIEW_PREFIX = ENDPOINT + "/s/"


class RouteKind(enum.Enum):
    """What a path is."""

    ENDPOINT = "endpoint"
    METADATA = "metadata"


@dataclass(frozen=True)
class Route:
    """A path the front answers.

    Attributes:
        kind: The endpoint or the metadata.
        server: The view of the endpoint: None for ``/mcp``, else the server's name.
        label: The path as the HTTP metrics label it (one label for every server).
    """

    kind: RouteKind
    server: str | None
    label: str


_ENDPOINT = Route(RouteKind.ENDPOINT, None, ENDPOINT)
_METADATA = Route(RouteKind.METADATA, None, METADATA)


def route_of(path: str) -> Route | None:
    """The front's route for ``path``; None when the front does not answer it."""
    if path == ENDPOINT:
        return _ENDPOINT
    if path in METADATA_PATHS:
        return _METADATA
    if path.startswith(_VIEW_PREFIX):
        server = path[len(_VIEW_PREFIX) :]
        if SERVER_NAME.fullmatch(server):
            return Route(RouteKind.ENDPOINT, server, _VIEW_PREFIX + "{server}")
    return None
