"""A servicer for a contract without logic, for tests that need one served.

Every method answers UNIMPLEMENTED, but the service is served, reflected and registered
with its schema, so the registry and the gateway know its routes.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import descriptor

from meshkit.grpc_types import Context
from meshkit.server import Servicer


def unimplemented(service: descriptor.ServiceDescriptor) -> Servicer:
    """Return a Servicer for ``service`` whose every method answers UNIMPLEMENTED."""
    handlers = {method.name: _handler(method) for method in service.methods}
    generic = grpc.method_handlers_generic_handler(service.full_name, handlers)

    def add_to_server(_: object, server: grpc.aio.Server) -> None:
        server.add_generic_rpc_handlers((generic,))

    return Servicer(service, add_to_server, None)


def _handler(method: descriptor.MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
    message = f"{method.full_name} is not implemented yet"

    async def behavior(request: Any, context: Context) -> None:
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, message)

    if method.client_streaming and method.server_streaming:
        return grpc.stream_stream_rpc_method_handler(behavior)
    if method.client_streaming:
        return grpc.stream_unary_rpc_method_handler(behavior)
    if method.server_streaming:
        return grpc.unary_stream_rpc_method_handler(behavior)
    return grpc.unary_unary_rpc_method_handler(behavior)
