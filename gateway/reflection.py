"""Aggregated server reflection: every registered plugin's schema on the gateway's port.

Served as v1alpha (what grpcurl 1.8 speaks) and v1 (same messages, another package; see
:mod:`meshkit.reflection`). ``list`` names the gateway's own services (health and
reflection) and every gRPC service the catalog routes; symbols, files and extensions are
looked up in the gateway's own schema first, then in each plugin's (one descriptor pool
per schema, see :mod:`gateway.schemas`). Like the Go implementation, a file is sent with
the files it imports, leaving out imports already sent on the same stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2

from gateway.catalog import Catalog
from gateway.schemas import Schema
from meshkit.grpc_types import Context
from meshkit.reflection import V1, V1ALPHA, register_v1_descriptor

HEALTH = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
#: The services the gateway serves itself on its gRPC port.
OWN_SERVICES = (HEALTH, V1ALPHA, V1)

_Request = reflection_pb2.ServerReflectionRequest
_Response = reflection_pb2.ServerReflectionResponse
_NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]
_INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT.value[0]


def own_schema() -> Schema:
    """The schema of the gateway's own services (health and both reflection versions),
    and of ``google.rpc.Status`` with its standard details, so that clients can decode
    the details of any error passing through."""
    register_v1_descriptor()
    files = descriptor_pb2.FileDescriptorSet()
    for file in (
        health_pb2.DESCRIPTOR,
        reflection_pb2.DESCRIPTOR,
        status_pb2.DESCRIPTOR,
        error_details_pb2.DESCRIPTOR,
    ):
        file.CopyToProto(files.file.add())
    v1 = files.file.add()
    v1.ParseFromString(_v1_file())
    return Schema.build("gateway", files)


def _v1_file() -> bytes:
    proto = descriptor_pb2.FileDescriptorProto()
    descriptor_pool.Default().FindFileByName("grpc/reflection/v1/reflection.proto").CopyToProto(
        proto
    )
    return proto.SerializeToString()


class AggregatedReflection:
    """The ``ServerReflectionInfo`` stream over the gateway's schema and the catalog's."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._own = own_schema()

    async def ServerReflectionInfo(
        self, requests: AsyncIterator[_Request], context: Context
    ) -> AsyncIterator[_Response]:
        """Answer each reflection request of the stream."""
        sent: set[str] = set()
        async for request in requests:
            response = self._answer(request, sent)
            response.valid_host = request.host
            response.original_request.CopyFrom(request)
            yield response

    def _schemas(self) -> Iterable[Schema]:
        yield self._own
        yield from self._catalog.schemas()

    def _answer(self, request: _Request, sent: set[str]) -> _Response:
        kind = request.WhichOneof("message_request")
        if kind == "list_services":
            names = sorted({*OWN_SERVICES, *self._catalog.snapshot.owners})
            response = _Response()
            response.list_services_response.service.extend(
                reflection_pb2.ServiceResponse(name=name) for name in names
            )
            return response
        if kind == "file_by_filename":
            name = request.file_by_filename
            return self._files(lambda schema: name if name in schema.files else None, sent, name)
        if kind == "file_containing_symbol":
            symbol = request.file_containing_symbol
            return self._files(lambda schema: schema.file_containing(symbol), sent, symbol)
        if kind == "file_containing_extension":
            ext = request.file_containing_extension
            return self._files(
                lambda schema: schema.extension(ext.containing_type, ext.extension_number),
                sent,
                f"extension {ext.extension_number} of {ext.containing_type}",
            )
        if kind == "all_extension_numbers_of_type":
            return self._extension_numbers(request.all_extension_numbers_of_type)
        return _error(_INVALID_ARGUMENT, f"unsupported reflection request {kind!r}")

    def _files(self, find: Callable[[Schema], str | None], sent: set[str], what: str) -> _Response:
        for schema in self._schemas():
            name = find(schema)
            if name is None:
                continue
            response = _Response()
            files = response.file_descriptor_response.file_descriptor_proto
            for index, (file_name, data) in enumerate(schema.file_with_imports(name)):
                if index == 0 or file_name not in sent:
                    files.append(data)
                    sent.add(file_name)
            return response
        return _error(_NOT_FOUND, f"{what} not found")

    def _extension_numbers(self, message: str) -> _Response:
        for schema in self._schemas():
            numbers = schema.extension_numbers(message)
            if numbers is not None:
                response = _Response()
                response.all_extension_numbers_response.base_type_name = message
                response.all_extension_numbers_response.extension_number.extend(numbers)
                return response
        return _error(_NOT_FOUND, f"type {message} not found")


def _error(code: int, message: str) -> _Response:
    response = _Response()
    response.error_response.error_code = code
    response.error_response.error_message = message
    return response


def add_reflection(server: grpc.aio.Server, reflection: AggregatedReflection) -> None:
    """Serve ``reflection`` on ``server`` under v1alpha and v1."""
    handler = grpc.stream_stream_rpc_method_handler(
        reflection.ServerReflectionInfo,
        request_deserializer=_Request.FromString,
        response_serializer=_Response.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        tuple(
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler})
            for name in (V1ALPHA, V1)
        )
    )
