"""Who may call a server's methods, from each one's declared ``(plugmesh.options.v1.access)``.

:class:`AccessInterceptor` decides each call before any servicer code runs:

- a method of a guarded service hands its declared access (PUBLIC, AUTHENTICATED, ADMIN,
  INTERNAL) and the call's metadata to the process's :class:`AccessPolicy`, which admits
  the call or raises the refusal (a :class:`~meshkit.errors.MeshError`);
- a method of an open service (the server's own plumbing: health, reflection) is served;
- anything else is refused with PERMISSION_DENIED, reason ``ACCESS_UNDECLARED``: a guarded
  method whose access is not declared, ``ACCESS_UNSPECIFIED`` or a value this toolkit does
  not know, and a method of a service nobody listed. Deny by default: an RPC added without
  the option is closed, not open.

A refused call gets a handler of the same kind (unary or streaming) that raises the
refusal, so :class:`~meshkit.interceptors.MeshInterceptor`, outside it, maps, counts and
traces it like any other error. Placed inside
:class:`~meshkit.malformed.MalformedRequestInterceptor`, as :class:`~meshkit.server.PluginServer`
does, a request that does not parse is still refused as malformed first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, NoReturn, Protocol, TypeAlias

import grpc
from google.protobuf import descriptor

from meshkit.errors import MeshError, PermissionDenied
from meshkit.grpc_types import Context
from meshkit.interceptors import Handler
from plugmesh.options.v1 import options_pb2

__all__ = [
    "KNOWN_ACCESS",
    "Access",
    "AccessInterceptor",
    "AccessPolicy",
    "Metadata",
    "declared_access",
]

Access: TypeAlias = options_pb2.Access.ValueType
#: A call's invocation metadata.
Metadata: TypeAlias = Sequence[tuple[str, str | bytes]]

#: The access levels a policy is asked about; any other declared value is refused.
KNOWN_ACCESS: frozenset[Access] = frozenset(
    {
        options_pb2.ACCESS_PUBLIC,
        options_pb2.ACCESS_AUTHENTICATED,
        options_pb2.ACCESS_ADMIN,
        options_pb2.ACCESS_INTERNAL,
    }
)


def declared_access(method: descriptor.MethodDescriptor) -> Access | None:
    """The access ``method`` declares; None when it declares none, ``ACCESS_UNSPECIFIED``
    or a value outside :data:`KNOWN_ACCESS`."""
    options = method.GetOptions()
    if not options.HasExtension(options_pb2.access):
        return None
    access = options.Extensions[options_pb2.access]
    return access if access in KNOWN_ACCESS else None


class AccessPolicy(Protocol):
    """A process's rule for each access level (the registry's: :mod:`registry.access`)."""

    def admit(self, access: Access, method: str, metadata: Metadata) -> None:
        """Return when the caller may call ``method`` (its full name) of ``access``.

        Raises:
            MeshError: The refusal the caller gets.
        """


class AccessInterceptor(grpc.aio.ServerInterceptor):
    """Admits or refuses each call by its method's declared access.

    Args:
        guarded: The services whose methods are checked against ``policy``.
        policy: The process's rule per access level.
        open_services: Full names of services served to anyone (health, reflection).
    """

    def __init__(
        self,
        guarded: Iterable[descriptor.ServiceDescriptor],
        policy: AccessPolicy,
        *,
        open_services: Iterable[str] = (),
    ) -> None:
        self._methods = {
            f"/{service.full_name}/{method.name}": (method.full_name, declared_access(method))
            for service in guarded
            for method in service.methods
        }
        self._open = frozenset(open_services)
        self._policy = policy

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        path = handler_call_details.method
        if path.lstrip("/").partition("/")[0] in self._open:
            return handler
        try:
            self._admit(path, handler_call_details.invocation_metadata or ())
        except MeshError as refusal:
            return _refusing(handler, refusal)
        return handler

    def _admit(self, path: str, metadata: Metadata) -> None:
        name, access = self._methods.get(path, (path.lstrip("/").replace("/", "."), None))
        if access is None:
            raise PermissionDenied(
                f"{name} declares no access the server knows"
                " ((plugmesh.options.v1.access)); it is refused until it does",
                reason="ACCESS_UNDECLARED",
                metadata={"method": name},
            )
        self._policy.admit(access, name, metadata)


def _refusing(handler: Handler, refusal: MeshError) -> Handler:
    """A handler of ``handler``'s kind that ends every call with ``refusal``."""

    # A coroutine for every kind: grpc.aio awaits one for a response stream too.
    async def refuse(request: Any, context: Context) -> NoReturn:
        raise refusal

    if handler.unary_unary:
        make = grpc.unary_unary_rpc_method_handler
    elif handler.unary_stream:
        make = grpc.unary_stream_rpc_method_handler
    elif handler.stream_unary:
        make = grpc.stream_unary_rpc_method_handler
    else:
        make = grpc.stream_stream_rpc_method_handler
    return make(
        refuse,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
