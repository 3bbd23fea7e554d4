"""A test plugin with one method of each cardinality, built on the toolkit's PluginServer.

``test.echo.v1.EchoService`` is described by a file built here and added to the default
descriptor pool, so the toolkit serves its reflection and registers its contract like
any generated plugin's. Each instance answers with its own address in ``served_by``.

Requests steer the answer: ``fail`` names a status code to fail with (with an
``ErrorInfo`` of reason ``ECHO_FAILED``), ``delay_ms`` sleeps first, ``count`` is the
number of streamed messages. :attr:`EchoServicer.unavailable` makes an instance fail
every call with UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory

from meshkit.config import MeshConfig
from meshkit.errors import MeshError, Unavailable
from meshkit.grpc_types import Context
from meshkit.server import PluginServer, Servicer
from meshkit.tls import MeshTls
from plugmesh.options.v1 import options_pb2

PACKAGE = "test.echo.v1"
SERVICE = f"{PACKAGE}.EchoService"
FILE = "test/echo/v1/echo.proto"

_F = descriptor_pb2.FieldDescriptorProto
_SAFE = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS


def _json(name: str) -> str:
    # What protoc fills in: lowerCamelCase.
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _file() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(
        name=FILE,
        package=PACKAGE,
        syntax="proto3",
        dependency=["google/api/annotations.proto", "plugmesh/options/v1/options.proto"],
    )
    request = file.message_type.add(name="EchoRequest")
    for number, (name, kind) in enumerate(
        [
            ("message", _F.TYPE_STRING),
            ("count", _F.TYPE_INT32),
            ("delay_ms", _F.TYPE_INT32),
            ("fail", _F.TYPE_STRING),
        ],
        start=1,
    ):
        request.field.add(
            name=name, number=number, type=kind, label=_F.LABEL_OPTIONAL, json_name=_json(name)
        )
    response = file.message_type.add(name="EchoResponse")
    for number, (name, kind, label) in enumerate(
        [
            ("message", _F.TYPE_STRING, _F.LABEL_OPTIONAL),
            ("served_by", _F.TYPE_STRING, _F.LABEL_OPTIONAL),
            ("index", _F.TYPE_INT32, _F.LABEL_OPTIONAL),
            ("metadata", _F.TYPE_STRING, _F.LABEL_REPEATED),
        ],
        start=1,
    ):
        response.field.add(name=name, number=number, type=kind, label=label, json_name=_json(name))
    service = file.service.add(name="EchoService")
    service.options.Extensions[options_pb2.plugin].version = "1.0.0"
    for name, client, server, safe in [
        ("Echo", False, False, True),
        ("Mutate", False, False, False),
        ("Stream", False, True, True),
        ("Collect", True, False, False),
        ("Chat", True, True, False),
    ]:
        method = service.method.add(
            name=name,
            input_type=f".{PACKAGE}.EchoRequest",
            output_type=f".{PACKAGE}.EchoResponse",
            client_streaming=client,
            server_streaming=server,
        )
        if safe:
            method.options.idempotency_level = _SAFE
        if name != "Mutate":
            # The proxy tests are not about authentication (tests/gateway/auth is); Mutate
            # declares nothing, which the gateway treats as ACCESS_AUTHENTICATED.
            method.options.Extensions[options_pb2.access] = options_pb2.ACCESS_PUBLIC
        if name == "Echo":
            method.options.Extensions[annotations_pb2.http].get = "/v1/echo/{message}"
    return file


def _load() -> Any:
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(SERVICE)
    except KeyError:
        pool.Add(_file())
        return pool.FindServiceByName(SERVICE)


DESCRIPTOR = _load()
EchoRequest: Any = message_factory.GetMessageClass(DESCRIPTOR.methods_by_name["Echo"].input_type)
EchoResponse: Any = message_factory.GetMessageClass(DESCRIPTOR.methods_by_name["Echo"].output_type)


def _failure(code_name: str) -> MeshError:
    failed = type("EchoFailed", (MeshError,), {"code": grpc.StatusCode[code_name]})
    error: MeshError = failed(
        f"failing with {code_name}", reason="ECHO_FAILED", metadata={"fail": code_name}
    )
    return error


class EchoServicer:
    """The echo implementation; counts calls per method."""

    def __init__(self) -> None:
        self.address = ""
        self.unavailable = False
        self.calls: Counter[str] = Counter()
        self.time_remaining: list[float | None] = []
        """Per call, the seconds left before its deadline when it arrived (``None``: none)."""

    async def _answer(self, method: str, request: Any, context: Context, **fields: Any) -> Any:
        self.calls[method] += 1
        self.time_remaining.append(context.time_remaining())
        if self.unavailable:
            raise Unavailable(f"{self.address} is unavailable", reason="ECHO_UNAVAILABLE")
        if request.delay_ms:
            await asyncio.sleep(request.delay_ms / 1000)
        if request.fail:
            raise _failure(request.fail)
        received = [
            f"{key}={value}"
            for key, value in context.invocation_metadata() or ()
            if isinstance(value, str) and not key.startswith(("grpc-", ":", "user-agent"))
        ]
        return EchoResponse(
            message=request.message, served_by=self.address, metadata=received, **fields
        )

    async def Echo(self, request: Any, context: Context) -> Any:
        await context.send_initial_metadata((("x-echo-initial", self.address),))
        context.set_trailing_metadata((("x-echo-trailing", "done"),))
        return await self._answer("Echo", request, context)

    async def Mutate(self, request: Any, context: Context) -> Any:
        return await self._answer("Mutate", request, context)

    async def Stream(self, request: Any, context: Context) -> AsyncIterator[Any]:
        for index in range(request.count):
            yield await self._answer("Stream", request, context, index=index)

    async def Collect(self, requests: AsyncIterator[Any], context: Context) -> Any:
        parts = [request.message async for request in requests]
        return await self._answer("Collect", EchoRequest(message="+".join(parts)), context)

    async def Chat(self, requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
        index = 0
        async for request in requests:
            yield await self._answer("Chat", request, context, index=index)
            index += 1


def _add(servicer: EchoServicer, server: grpc.aio.Server) -> None:
    def handler(kind: Any, behavior: Any) -> Any:
        return kind(
            behavior,
            request_deserializer=EchoRequest.FromString,
            response_serializer=EchoResponse.SerializeToString,
        )

    handlers = {
        "Echo": handler(grpc.unary_unary_rpc_method_handler, servicer.Echo),
        "Mutate": handler(grpc.unary_unary_rpc_method_handler, servicer.Mutate),
        "Stream": handler(grpc.unary_stream_rpc_method_handler, servicer.Stream),
        "Collect": handler(grpc.stream_unary_rpc_method_handler, servicer.Collect),
        "Chat": handler(grpc.stream_stream_rpc_method_handler, servicer.Chat),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))


class EchoPlugin:
    """One echo instance: a real PluginServer that registers as service ``echo``."""

    def __init__(
        self,
        registry_address: str,
        *,
        name: str = "echo",
        address: str = "127.0.0.1:0",
        register: bool = True,
        tls: MeshTls | None = None,
    ) -> None:
        self.servicer = EchoServicer()
        config = MeshConfig.from_env(
            {
                "PLUGMESH_REGISTRY_ADDRESS": registry_address,
                "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
            }
        )
        config = dataclasses.replace(config, tls=tls)
        self.server = PluginServer(
            name,
            [Servicer(DESCRIPTOR, _add, self.servicer)],
            address=address,
            config=config,
            register=register,
        )

    @property
    def address(self) -> str:
        """Where the instance serves."""
        return self.server.address

    async def start(self) -> None:
        """Serve and register."""
        await self.server.start()
        self.servicer.address = self.server.address

    async def stop(self) -> None:
        """Deregister and stop."""
        await self.server.stop(0.5)


def message_bytes(**fields: Any) -> bytes:
    """An ``EchoRequest`` serialized."""
    request: message.Message = EchoRequest(**fields)
    return request.SerializeToString()
