"""Server reflection, v1alpha (what grpcurl 1.8 speaks) and v1.

grpcio-reflection ships only v1alpha. v1 has the same messages under another package, so
the v1 service is the v1alpha servicer behind a second name: the bytes on the wire are
the same. The v1 file descriptor is derived from the v1alpha one and added to the
default pool, so reflection can describe itself under both names.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import _async as reflection_async
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

V1ALPHA = "grpc.reflection.v1alpha.ServerReflection"
V1 = "grpc.reflection.v1.ServerReflection"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def register_v1_descriptor() -> None:
    """Add the v1 reflection file, derived from v1alpha's, to the default pool (once)."""
    pool = descriptor_pool.Default()
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    for message in proto.message_type:
        for field in message.field:
            if field.HasField("type_name"):
                field.type_name = _renamed(field.type_name)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    proto.name = _V1_FILE
    proto.package = "grpc.reflection.v1"
    proto.options.Clear()
    pool.Add(proto)


def _renamed(type_name: str) -> str:
    return type_name.replace(".grpc.reflection.v1alpha.", ".grpc.reflection.v1.", 1)


class _ReflectionServicer(reflection_async.ReflectionServicer):
    """The library's servicer, also finding methods: the upb pool only finds their service."""

    def _file_containing_symbol(
        self, request: reflection_pb2.ServerReflectionRequest, fully_qualified_name: str
    ) -> reflection_pb2.ServerReflectionResponse:
        base: Any = super()  # the stubs leave the base class's helpers out
        found: reflection_pb2.ServerReflectionResponse = base._file_containing_symbol(
            request, fully_qualified_name
        )
        service, _, method = fully_qualified_name.rpartition(".")
        if found.HasField("error_response") and service:
            try:
                if descriptor_pool.Default().FindServiceByName(service).methods_by_name.get(method):
                    found = base._file_containing_symbol(request, service)
            except KeyError:
                pass
        return found


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    """Serve reflection v1alpha and v1 on ``server`` for ``service_names``."""
    register_v1_descriptor()
    servicer = _ReflectionServicer([*service_names, V1ALPHA, V1])
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]  # untyped in the stubs
    v1 = grpc.method_handlers_generic_handler(
        V1,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((v1,))
