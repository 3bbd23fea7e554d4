"""Which metadata crosses the gateway, in each direction.

Requests: everything a client sends is forwarded except transport and hop-by-hop
headers, the reserved ``grpc-*`` keys (gRPC sets its own, the deadline travels as a
timeout) and identity headers (``x-plugmesh-identity*``, ``x-plugmesh-user-*``): only the
gateway may set those, once it has authenticated the caller.

Responses: initial and trailing metadata go back to the client without the reserved keys,
except ``grpc-status-details-bin``, which carries the ``google.rpc.Status`` details.
"""

from __future__ import annotations

from collections.abc import Iterable

MetadataValue = str | bytes
Metadata = tuple[tuple[str, MetadataValue], ...]

#: Identity headers that only the gateway may set.
IDENTITY_PREFIXES = ("x-plugmesh-identity", "x-plugmesh-user-")
STATUS_DETAILS_KEY = "grpc-status-details-bin"

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
    }
)


def is_identity(key: str) -> bool:
    """Whether ``key`` is an identity header a client may not send."""
    return key.lower().startswith(IDENTITY_PREFIXES)


def request_metadata(metadata: Iterable[tuple[str, MetadataValue]] | None) -> Metadata:
    """The part of a client's metadata that is forwarded upstream."""
    kept: list[tuple[str, MetadataValue]] = []
    for key, value in metadata or ():
        lowered = key.lower()
        if (
            lowered.startswith((":", "grpc-"))
            or lowered in _HOP_BY_HOP
            or lowered.startswith(IDENTITY_PREFIXES)
        ):
            continue
        kept.append((lowered, value))
    return tuple(kept)


def response_metadata(metadata: Iterable[tuple[str, MetadataValue]] | None) -> Metadata:
    """The part of an upstream's initial or trailing metadata sent back to the client."""
    kept: list[tuple[str, MetadataValue]] = []
    for key, value in metadata or ():
        lowered = key.lower()
        reserved = lowered.startswith((":", "grpc-")) and lowered != STATUS_DETAILS_KEY
        if reserved or lowered in _HOP_BY_HOP:
            continue
        kept.append((lowered, value))
    return tuple(kept)
