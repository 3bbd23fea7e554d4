"""Cross-origin requests from browsers: the origins an operator allows, and their preflights.

Off unless ``PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS`` names origins (``https://app.example``,
comma-separated, or ``*`` for any). Then:

- a preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an
  allowed origin is answered 204 with the methods and headers it may use, cached by the
  browser for :attr:`CorsPolicy.max_age_seconds`; from another origin it is 403;
- any other response to an allowed origin carries ``Access-Control-Allow-Origin`` (that
  origin), ``Vary: Origin``, and exposes the headers a client reads (the trace and
  request ids, gRPC's status headers).

Callers authenticate with a bearer header, never a cookie, so credentials mode is not
offered: a page sends ``Authorization`` like any header it was allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.http.asgi import Scope, Send, adding_headers, header
from meshkit.config import ConfigError

__all__ = ["ANY", "CorsPolicy", "parse_origins"]

#: Allows every origin.
ANY = "*"
_METHODS = b"GET, POST, PUT, PATCH, DELETE, OPTIONS"
_ALLOWED_HEADERS = (
    b"authorization, content-type, accept, grpc-timeout, x-request-id, traceparent, "
    b"tracestate, mcp-protocol-version, mcp-session-id, mcp-method, mcp-name, last-event-id"
)
_EXPOSED_HEADERS = (
    b"x-request-id, traceresponse, grpc-status, grpc-message, mcp-session-id, "
    b"www-authenticate, retry-after"
)


def parse_origins(value: str, variable: str) -> frozenset[str]:
    """The allowed origins of a setting's comma-separated ``value``.

    Raises:
        ConfigError: An entry is neither ``*`` nor ``scheme://host[:port]``.
    """
    origins = set()
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        if entry != ANY:
            parts = urlsplit(entry)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
                raise ConfigError(
                    f"{variable}: {entry!r} is not an origin (scheme://host[:port], or *)"
                )
            entry = entry.lower()
        origins.add(entry)
    return frozenset(origins)


@dataclass(frozen=True)
class CorsPolicy:
    """Which origins may call the gateway from a browser.

    Attributes:
        allowed_origins: ``scheme://host[:port]`` in lower case, or ``*``; empty: off.
        max_age_seconds: How long a browser may cache a preflight's answer.
    """

    allowed_origins: frozenset[str] = frozenset()
    max_age_seconds: int = 600

    @property
    def enabled(self) -> bool:
        return bool(self.allowed_origins)

    def allows(self, origin: bytes) -> bool:
        """Whether a request with this ``Origin`` header may read its answer."""
        if not self.enabled:
            return False
        return ANY in self.allowed_origins or origin.decode("latin-1").lower() in (
            self.allowed_origins
        )

    def is_preflight(self, scope: Scope) -> bool:
        """Whether the request is a CORS preflight this policy answers."""
        return (
            self.enabled
            and scope["method"] == "OPTIONS"
            and header(scope, b"origin") is not None
            and header(scope, b"access-control-request-method") is not None
        )

    async def answer_preflight(self, scope: Scope, send: Send) -> int:
        """Answer a preflight: 204 for an allowed origin, 403 for another."""
        origin = header(scope, b"origin") or b""
        if not self.allows(origin):
            await _send(send, 403, [(b"vary", b"Origin")])
            return 403
        headers = [
            *self._origin_headers(origin),
            (b"access-control-allow-methods", _METHODS),
            (b"access-control-allow-headers", _ALLOWED_HEADERS),
            (b"access-control-max-age", str(self.max_age_seconds).encode()),
        ]
        await _send(send, 204, headers)
        return 204

    def wrap(self, scope: Scope, send: Send) -> Send:
        """``send``, adding the CORS headers to the answer of an allowed origin."""
        origin = header(scope, b"origin")
        if origin is None or not self.allows(origin):
            return send
        added = [
            *self._origin_headers(origin),
            (b"access-control-expose-headers", _EXPOSED_HEADERS),
        ]
        return adding_headers(send, added)

    def _origin_headers(self, origin: bytes) -> Iterable[tuple[bytes, bytes]]:
        allowed = b"*" if ANY in self.allowed_origins else origin
        return [(b"access-control-allow-origin", allowed), (b"vary", b"Origin")]


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]]) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
