"""OAuth protected resource metadata (RFC 9728) of the MCP endpoint, and where it is.

The resource is the MCP endpoint's canonical URL: the configured one, else made from the
request's scheme and ``Host``. ``/mcp/s/<server>`` lies under it, so one document serves
every view. The authorization server is the configured JWT issuer: the gateway verifies
JWTs of that issuer, so a client gets its tokens there. Without one the document names
no authorization server, and a client needs a token it got otherwise (a machine token).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.mcpfront.paths import ENDPOINT, METADATA

__all__ = ["document", "metadata_url", "resource_url"]


def resource_url(scope: Mapping[str, Any], configured: str | None) -> str:
    """The MCP endpoint's URL: ``configured``, else made from the request in ``scope``."""
    if configured is not None:
        return configured
    return _origin(scope) + ENDPOINT


def metadata_url(scope: Mapping[str, Any], configured: str | None) -> str:
    """Where the metadata of the resource is: ``/.well-known/oauth-protected-resource``
    inserted before the resource's path (RFC 9728 §3.1)."""
    if configured is None:
        return _origin(scope) + METADATA
    scheme, _, rest = configured.partition("://")
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host}/.well-known/oauth-protected-resource{slash}{path}"


def document(scope: Mapping[str, Any], configured: str | None, issuer: str | None) -> bytes:
    """The metadata document, as JSON."""
    body: dict[str, Any] = {"resource": resource_url(scope, configured)}
    if issuer:
        body["authorization_servers"] = [issuer]
    body["bearer_methods_supported"] = ["header"]
    body["resource_name"] = "plugmesh MCP gateway"
    return json.dumps(body, separators=(",", ":")).encode()


def _origin(scope: Mapping[str, Any]) -> str:
    host = ""
    for name, value in scope.get("headers", ()):
        if name == b"host":
            host = bytes(value).decode("latin-1")
            break
    if not host:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scope.get('scheme', 'http')}://{host}"
