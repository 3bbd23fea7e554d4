"""Fake plugin instances and contracts built on the fly.

:class:`FakePlugin` is a real ``grpc.aio`` server on a free port serving health checking
and server reflection for descriptors built with :func:`contract_file`, so registry,
gateway and end-to-end tests can register instances with any contract, flip their health
and kill them, without writing a .proto file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import grpc
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_health.v1 import _async as health_async
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import _async as reflection_async
from grpc_reflection.v1alpha import reflection_pb2_grpc

from meshkit.descriptors import file_from_default_pool
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.options.v1 import options_pb2

if TYPE_CHECKING:
    from registry.app import RegistryServer

HEALTH_SERVICE = "grpc.health.v1.Health"
REFLECTION_SERVICE = "grpc.reflection.v1alpha.ServerReflection"


@dataclass(frozen=True)
class Method:
    """An RPC of a test contract; ``http`` lists (method, path) bindings, the first primary."""

    name: str
    http: Sequence[tuple[str, str]] = ()


@dataclass(frozen=True)
class Contract:
    """A test contract: one file with one service."""

    package: str
    service: str
    methods: Sequence[Method] = ()
    plugin: options_pb2.Plugin | None = None
    file_name: str = ""
    extra_imports: Sequence[str] = field(default_factory=tuple)

    @property
    def full_name(self) -> str:
        """The service's full gRPC name."""
        return f"{self.package}.{self.service}"


def contract_file(contract: Contract) -> descriptor_pb2.FileDescriptorProto:
    """Build the ``FileDescriptorProto`` of ``contract``, with http and plugin options."""
    name = contract.file_name or contract.package.replace(".", "/") + "/service.proto"
    file = descriptor_pb2.FileDescriptorProto(
        name=name,
        package=contract.package,
        syntax="proto3",
        dependency=[
            "google/api/annotations.proto",
            "plugmesh/options/v1/options.proto",
            *contract.extra_imports,
        ],
    )
    request = file.message_type.add(name="Request")
    request.field.add(
        name="id",
        number=1,
        type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
        label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        json_name="id",
    )
    file.message_type.add(name="Response")
    service = file.service.add(name=contract.service)
    if contract.plugin is not None:
        service.options.Extensions[options_pb2.plugin].CopyFrom(contract.plugin)
    for method in contract.methods:
        rpc = service.method.add(
            name=method.name,
            input_type=f".{contract.package}.Request",
            output_type=f".{contract.package}.Response",
        )
        if method.http:
            rule = rpc.options.Extensions[annotations_pb2.http]
            _bind(rule, *method.http[0])
            for verb, path in method.http[1:]:
                _bind(rule.additional_bindings.add(), verb, path)
    return file


def descriptor_set(
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> descriptor_pb2.FileDescriptorSet:
    """Return ``files`` with every import they need from the default pool, imports first."""
    by_name = {file.name: file for file in files}
    result = descriptor_pb2.FileDescriptorSet()
    done: set[str] = set()

    def add(name: str) -> None:
        if name in done:
            return
        done.add(name)
        file = by_name.get(name) or file_from_default_pool(name)
        if file is None:
            raise KeyError(f"no file {name!r} in the test files or the default pool")
        for dependency in file.dependency:
            add(dependency)
        result.file.append(file)

    for file in files:
        add(file.name)
    return result


class CountingHealth(health_async.HealthServicer):
    """The standard health servicer, counting the Check and Watch calls it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ],
    ) -> health_pb2.HealthCheckResponse:
        """Answer one check."""
        self.calls += 1
        return await super().Check(request, context)

    async def Watch(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext[
            health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
        ],
    ) -> None:
        """Push every status change until the call ends."""
        self.calls += 1
        await super().Watch(request, context)


class FakePlugin:
    """A plugin instance for tests: health checking and reflection for given files.

    Args:
        files: The files describing ``services`` (imports come from the default pool).
        services: Full names of the gRPC services it claims to serve.
        reflection: Whether to serve server reflection.
    """

    def __init__(
        self,
        files: Sequence[descriptor_pb2.FileDescriptorProto],
        services: Sequence[str],
        *,
        reflection: bool = True,
    ) -> None:
        self.files = descriptor_set(files)
        self.services = tuple(services)
        self.health = CountingHealth()
        self._reflection = reflection
        self._server: grpc.aio.Server | None = None
        self._address = ""

    @property
    def address(self) -> str:
        """``127.0.0.1:<port>``; empty before :meth:`start`."""
        return self._address

    async def start(self) -> None:
        """Serve on a free port. Safe to call twice."""
        if self._server is not None:
            return
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        if self._reflection:
            pool = descriptor_pool.DescriptorPool()
            for file in self.files.file:
                pool.Add(file)
            pool.Add(_default_file(health_pb2.DESCRIPTOR.name))
            servicer = reflection_async.ReflectionServicer(
                [*self.services, HEALTH_SERVICE, REFLECTION_SERVICE], pool=pool
            )
            reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]  # the stubs leave it untyped
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self._address = f"127.0.0.1:{port}"

    async def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING for the whole server."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        await self.health.set("", status)

    async def stop(self, grace_seconds: float | None = None) -> None:
        """Stop serving; ``None`` stops hard, cutting every stream. Safe to call twice."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace_seconds)


def _bind(rule: http_pb2.HttpRule, verb: str, path: str) -> None:
    verb = verb.lower()
    if verb in {"get", "put", "post", "delete", "patch"}:
        setattr(rule, verb, path)
    else:
        rule.custom.kind = verb.upper()
        rule.custom.path = path


def _default_file(name: str) -> descriptor_pb2.FileDescriptorProto:
    file = file_from_default_pool(name)
    if file is None:
        raise KeyError(name)
    return file


class StartRegistry(Protocol):
    """A fixture that starts a registry on a free port and closes it after the test."""

    async def __call__(self, **overrides: Any) -> RegistryServer:
        """Start a registry; ``overrides`` replace fields of the default config."""
        ...


class StartPlugin(Protocol):
    """A fixture that starts a :class:`FakePlugin` and stops it after the test."""

    async def __call__(
        self,
        files: Sequence[descriptor_pb2.FileDescriptorProto],
        services: Sequence[str],
        *,
        reflection: bool = True,
    ) -> FakePlugin:
        """Start a fake plugin serving ``services`` described by ``files``."""
        ...


class _WithSecret(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the registration secret to every call, as a mesh member sends it."""

    def __init__(self, secret: str) -> None:
        self._entry = (SECRET_METADATA_KEY, secret)

    def _details(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._entry)
        return details._replace(metadata=metadata)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


def member_channel(address: str, secret: str) -> grpc.aio.Channel:
    """A channel to the registry at ``address`` whose calls carry ``secret``, as a mesh
    member's do (the registry reads nothing to callers without it)."""
    return grpc.aio.insecure_channel(address, interceptors=[_WithSecret(secret)])
