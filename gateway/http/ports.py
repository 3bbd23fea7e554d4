"""What the HTTP side needs from the rest of the gateway, as ``Protocol`` s.

``gateway.catalog.Catalog`` and ``gateway.upstream.Upstreams`` satisfy them; tests may
pass anything shaped the same. ``M`` is the catalog's method type, handed back to the
upstreams unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol, TypeVar

from google.protobuf import descriptor

from gateway.http.asgi import Receive, Scope, Send

__all__ = [
    "CatalogView",
    "ConsoleEndpoint",
    "McpEndpoint",
    "Metadata",
    "MethodInfo",
    "RequestGuard",
    "ResponseStream",
    "SnapshotView",
    "UnaryReply",
    "UpstreamCalls",
]

Metadata = tuple[tuple[str, str | bytes], ...]


class MethodInfo(Protocol):
    """An RPC the catalog can route."""

    @property
    def descriptor(self) -> descriptor.MethodDescriptor:
        """Its descriptor (input and output types, options with the ``google.api.http`` rule)."""
        ...

    @property
    def comments(self) -> Mapping[str, str]:
        """The comments of its contract by full name (``gateway.comments``): the RPC's, its
        messages' and their fields'; empty when the contract came without."""
        ...


M = TypeVar("M", bound=MethodInfo)
M_contra = TypeVar("M_contra", bound=MethodInfo, contravariant=True)
M_co = TypeVar("M_co", bound=MethodInfo, covariant=True)


class SnapshotView(Protocol[M_co]):
    """The catalog at one moment."""

    @property
    def schema_generation(self) -> int:
        """Grows whenever the set of methods changes."""
        ...

    def methods(self) -> Sequence[M_co]:
        """Every served method."""
        ...


class CatalogView(Protocol[M_co]):
    """The registry's view of the mesh, kept current by its watch."""

    @property
    def ready(self) -> bool:
        """Whether the registry's state has been received (``/readyz``)."""
        ...

    @property
    def snapshot(self) -> SnapshotView[M_co]:
        """The current state."""
        ...

    def subscribe(self, subscriber: Callable[[SnapshotView[M_co]], None]) -> Callable[[], None]:
        """Call ``subscriber(snapshot)`` after every change; returns the unsubscribe call."""
        ...


class UnaryReply(Protocol):
    """The serialized response of a unary call, with the upstream's metadata."""

    @property
    def body(self) -> bytes:
        """The response message, serialized."""
        ...

    @property
    def initial_metadata(self) -> Metadata:
        """Headers the upstream sent."""
        ...

    @property
    def trailing_metadata(self) -> Metadata:
        """Trailers the upstream sent."""
        ...


class ResponseStream(Protocol):
    """The serialized messages of a server-streaming call."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Iterate over the messages; failures raise ``grpc.aio.AioRpcError``."""
        ...

    async def __aenter__(self) -> ResponseStream:
        """Enter: the call is cancelled on exit."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Cancel the call if it still runs."""
        ...

    async def initial_metadata(self) -> Metadata:
        """Headers the upstream sent."""
        ...


class UpstreamCalls(Protocol[M_contra]):
    """Calls to the plugins, at the bytes level; failures raise ``grpc.aio.AioRpcError``."""

    async def unary(
        self,
        method: M_contra,
        request: bytes,
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> UnaryReply:
        """Call a unary method."""
        ...

    def server_stream(
        self,
        method: M_contra,
        request: bytes,
        *,
        timeout_seconds: float | None = None,
        metadata: Metadata = (),
    ) -> ResponseStream:
        """Call a server-streaming method."""
        ...


class RequestGuard(Protocol):
    """Authenticates and authorizes a request before it is transcoded
    (:class:`gateway.auth.HttpGuard`)."""

    async def __call__(
        self, rpc: descriptor.MethodDescriptor, scope: Mapping[str, Any]
    ) -> Metadata:
        """The metadata to add to the upstream call (the caller's signed identity).

        Raises:
            HttpError: The request is refused (401, 403, 503).
        """
        ...


class McpEndpoint(Protocol):
    """The MCP front (:class:`gateway.mcpfront.McpFront`): the app hands it, untouched and
    before any route of the table, the requests of the paths it claims. The limits of
    transcoded calls (body size, deadline) do not apply to them."""

    def route(self, path: str) -> str | None:
        """The metrics label of ``path`` when the endpoint answers it, else None."""
        ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer the request; returns the HTTP status sent."""
        ...


class ConsoleEndpoint(Protocol):
    """The console (:class:`gateway.console.Console`): the app hands it, untouched, the
    requests of the paths it claims (``/console`` and below)."""

    def route(self, path: str) -> str | None:
        """The metrics label of ``path`` when the endpoint answers it, else None."""
        ...

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Answer the request; returns the HTTP status sent."""
        ...
