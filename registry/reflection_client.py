"""Fetching an instance's descriptors over server reflection (``grpc.reflection.v1alpha``).

Used when a registration does not carry its descriptors. On one reflection stream it
lists the instance's services (unless the registration named them), asks for the file
containing each, and then for any imported file the answers left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.message import DecodeError
from grpc_reflection.v1alpha import reflection_pb2

from meshkit.tls import MeshTls, dial
from registry.schemas import is_infrastructure

_METHOD = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
_Request = reflection_pb2.ServerReflectionRequest
_Response = reflection_pb2.ServerReflectionResponse


class ReflectionError(Exception):
    """Reflection failed; ``code`` is the gRPC status of the failed call, if any."""

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FetchedSchema:
    """What an instance told about itself over reflection."""

    grpc_services: tuple[str, ...]
    files: tuple[descriptor_pb2.FileDescriptorProto, ...]


class DescriptorFetcher(Protocol):
    """Fetches an instance's descriptors; :func:`fetch_descriptors` is the real one."""

    async def __call__(
        self, address: str, grpc_services: Sequence[str], *, timeout_seconds: float
    ) -> FetchedSchema:
        """Fetch the descriptors of ``grpc_services`` (all of them when empty)."""
        ...


def descriptor_fetcher(tls: MeshTls | None) -> DescriptorFetcher:
    """:func:`fetch_descriptors` over mutual TLS with ``tls`` (plaintext when ``None``)."""

    async def fetch(
        address: str, grpc_services: Sequence[str], *, timeout_seconds: float
    ) -> FetchedSchema:
        return await fetch_descriptors(
            address, grpc_services, timeout_seconds=timeout_seconds, tls=tls
        )

    return fetch


async def fetch_descriptors(
    address: str,
    grpc_services: Sequence[str],
    *,
    timeout_seconds: float = 5.0,
    tls: MeshTls | None = None,
) -> FetchedSchema:
    """Fetch the descriptors of ``grpc_services`` from the instance at ``address``.

    When ``grpc_services`` is empty, every service the instance lists is taken except
    health checking and reflection; there may be none.

    Raises:
        ReflectionError: the instance cannot be reached or does not describe a service.
    """
    try:
        async with dial(address, tls) as channel:
            open_stream: grpc.aio.StreamStreamMultiCallable[_Request, _Response]
            open_stream = channel.stream_stream(
                _METHOD,
                request_serializer=_Request.SerializeToString,
                response_deserializer=_Response.FromString,
            )
            call = open_stream(timeout=timeout_seconds)
            session = _Session(call)
            services = tuple(grpc_services) or await session.list_services()
            files: dict[str, descriptor_pb2.FileDescriptorProto] = {}
            for service in services:
                session.add(files, await session.ask(_Request(file_containing_symbol=service)))
            await _fetch_missing_imports(session, files)
            await call.done_writing()
    except grpc.aio.AioRpcError as exc:
        raise ReflectionError(
            f"reflection on {address} failed: {exc.code().name}: {exc.details()}", code=exc.code()
        ) from exc
    return FetchedSchema(grpc_services=services, files=tuple(files.values()))


async def _fetch_missing_imports(
    session: _Session, files: dict[str, descriptor_pb2.FileDescriptorProto]
) -> None:
    while True:
        missing = [
            dependency
            for file in list(files.values())
            for dependency in file.dependency
            if dependency not in files
        ]
        if not missing:
            return
        for name in dict.fromkeys(missing):
            session.add(files, await session.ask(_Request(file_by_filename=name)))


class _Session:
    def __init__(self, call: grpc.aio.StreamStreamCall[_Request, _Response]) -> None:
        self._call = call

    async def ask(self, request: _Request) -> _Response:
        await self._call.write(request)
        response = await self._call.read()
        if response is grpc.aio.EOF or not isinstance(response, _Response):
            raise ReflectionError("the reflection stream ended early")
        if response.HasField("error_response"):
            raise ReflectionError(
                f"reflection answered {_describe(request)} with "
                f"{response.error_response.error_code}: {response.error_response.error_message}"
            )
        return response

    async def list_services(self) -> tuple[str, ...]:
        response = await self.ask(_Request(list_services=""))
        return tuple(
            service.name
            for service in response.list_services_response.service
            if not is_infrastructure(service.name)
        )

    def add(
        self, files: dict[str, descriptor_pb2.FileDescriptorProto], response: _Response
    ) -> None:
        for serialized in response.file_descriptor_response.file_descriptor_proto:
            try:
                file = descriptor_pb2.FileDescriptorProto.FromString(serialized)
            except DecodeError as exc:
                raise ReflectionError("reflection sent an undecodable file descriptor") from exc
            files.setdefault(file.name, file)


def _describe(request: _Request) -> str:
    kind = request.WhichOneof("message_request")
    return f"{kind} {getattr(request, kind)!r}" if kind else "a request"
