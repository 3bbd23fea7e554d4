"""The transcoding test plugin: ``test.transcoding.v1.TranscodingService``.

Its contract (``protos/test/transcoding/v1/transcoding.proto`` beside this file) has an
HTTP rule of every shape. It is compiled with ``grpc_tools.protoc`` when first needed
and added to the default descriptor pool, so the toolkit's :class:`PluginServer` serves
its reflection and registers it like a generated plugin's, with its comments.

Every method answers ``EchoReply`` with the request it received, the text metadata it
received and its own name. ``fail`` names a status code to fail with (an ``ErrorInfo``
of reason ``TEST_FAILED``), ``delay_ms`` sleeps first; the stream sends
``stream_count`` replies, or ``fail_after`` and then fails when ``fail`` is set;
:attr:`TranscodingServicer.cancelled_streams` counts streams cancelled by the caller.
"""

from __future__ import annotations

import asyncio
import base64
import functools
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
from google.api import (
    annotations_pb2,  # noqa: F401  # the pool needs google.api.http
    httpbody_pb2,
)
from google.protobuf import (
    descriptor,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,  # noqa: F401  # imported by the contract
    field_mask_pb2,  # noqa: F401
    message_factory,
    timestamp_pb2,  # noqa: F401
    wrappers_pb2,  # noqa: F401
)

from meshkit.config import MeshConfig
from meshkit.errors import MeshError
from meshkit.grpc_types import Context
from meshkit.server import PluginServer, Servicer
from tests.support.protoc import compiled

PACKAGE = "test.transcoding.v1"
SERVICE = f"{PACKAGE}.TranscodingService"
FILE = "test/transcoding/v1/transcoding.proto"
PROTOS = Path(__file__).parent / "protos"


@functools.cache
def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    """The compiled contract with everything it imports, and their comments."""
    return compiled(PROTOS, FILE)


def own_files() -> descriptor_pb2.FileDescriptorSet:
    """The contract's own file, with its comments: the files it imports are the default
    pool's, which may be other versions than protoc's."""
    return descriptor_pb2.FileDescriptorSet(
        file=[f for f in descriptor_set().file if f.name == FILE]
    )


@functools.cache
def service_descriptor() -> descriptor.ServiceDescriptor:
    """The service, from the default pool (added there on first use)."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(SERVICE)
    except KeyError:
        pass
    for file in descriptor_set().file:
        try:
            pool.FindFileByName(file.name)
        except KeyError:
            pool.Add(file)
    return pool.FindServiceByName(SERVICE)


def message_class(name: str) -> Any:
    """A message class of the contract by its short name (``ThingRequest``)."""
    service_descriptor()  # adds the contract to the default pool
    found = descriptor_pool.Default().FindMessageTypeByName(f"{PACKAGE}.{name}")
    return message_factory.GetMessageClass(found)


def _failure(code_name: str, message: str) -> MeshError:
    failed = type("TestFailed", (MeshError,), {"code": grpc.StatusCode[code_name]})
    error: MeshError = failed(message, reason="TEST_FAILED", metadata={"fail": code_name})
    return error


class TranscodingServicer:
    """Echoes every request; counts calls per method."""

    def __init__(self) -> None:
        self.reply_class = message_class("EchoReply")
        self.calls: dict[str, int] = {}
        self.cancelled_streams = 0

    async def answer(self, rpc: str, request: Any, context: Context, index: int = 0) -> Any:
        self.calls[rpc] = self.calls.get(rpc, 0) + 1
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.fail and rpc != "StreamThings":
            raise _failure(request.fail, f"{rpc} failed as asked")
        received = []
        for key, value in context.invocation_metadata() or ():
            if key.startswith(("grpc-", ":")) or key == "user-agent":
                continue
            text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
            received.append(f"{key}={text}")
        if index == 0:
            await context.send_initial_metadata((("x-served-by", rpc.lower()),))
        return self.reply_class(request=request, metadata=sorted(received), rpc=rpc, index=index)

    async def stream(self, request: Any, context: Context) -> AsyncIterator[Any]:
        count = request.fail_after if request.fail else request.stream_count
        try:
            for index in range(count):
                reply = await self.answer("StreamThings", request, context, index)
                if index:
                    reply.metadata[:] = []
                yield reply
        except asyncio.CancelledError:
            self.cancelled_streams += 1
            raise
        if request.fail:
            raise _failure(request.fail, f"the stream failed after {count} replies")

    async def download(self, request: Any, context: Context) -> httpbody_pb2.HttpBody:
        self.calls["Download"] = self.calls.get("Download", 0) + 1
        return httpbody_pb2.HttpBody(
            content_type=request.body_content_type, data=f"file {request.id}".encode()
        )

    async def download_chunks(
        self, request: Any, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        count = request.fail_after if request.fail else request.stream_count
        for index in range(count):
            kind = request.body_content_type if index == 0 else "ignored/after-the-first"
            yield httpbody_pb2.HttpBody(content_type=kind, data=f"chunk {index};".encode())
        if request.fail:
            raise _failure(request.fail, f"the stream failed after {count} chunks")

    async def upload(self, requests: AsyncIterator[Any], context: Context) -> Any:
        last = None
        async for request in requests:
            last = request
        return await self.answer("Upload", last or message_class("ThingRequest")(), context)


def _add(servicer: TranscodingServicer, server: grpc.aio.Server) -> None:
    service = service_descriptor()
    request_class = message_class("ThingRequest")
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    for method in service.methods:
        options = {
            "request_deserializer": request_class.FromString,
            "response_serializer": servicer.reply_class.SerializeToString,
        }
        raw = {**options, "response_serializer": httpbody_pb2.HttpBody.SerializeToString}
        if method.name == "Download":
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(servicer.download, **raw)
        elif method.name == "DownloadChunks":
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(
                servicer.download_chunks, **raw
            )
        elif method.name == "StreamThings":
            handlers[method.name] = grpc.unary_stream_rpc_method_handler(servicer.stream, **options)
        elif method.name == "Upload":
            handlers[method.name] = grpc.stream_unary_rpc_method_handler(servicer.upload, **options)
        else:
            handlers[method.name] = grpc.unary_unary_rpc_method_handler(
                functools.partial(servicer.answer, method.name), **options
            )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class TranscodingPlugin:
    """One instance: a real PluginServer registering as service ``transcoding``."""

    def __init__(self, registry_address: str, *, name: str = "transcoding") -> None:
        self.servicer = TranscodingServicer()
        config = MeshConfig.from_env(
            {
                "PLUGMESH_REGISTRY_ADDRESS": registry_address,
                "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
            }
        )
        self.server = PluginServer(
            name,
            [Servicer(service_descriptor(), _add, self.servicer)],
            address="127.0.0.1:0",
            config=config,
            version="1.0.0",
            source_info=own_files(),
        )

    @property
    def address(self) -> str:
        """Where the instance serves."""
        return self.server.address

    async def start(self) -> None:
        """Serve and register."""
        await self.server.start()

    async def stop(self) -> None:
        """Deregister and stop."""
        await self.server.stop(0.2)
