"""Reading a service's contract out of its file descriptors.

From a ``FileDescriptorSet`` this module takes the files that define the service's gRPC
services (with everything they import), the plugin metadata of the
``(plugmesh.options.v1.plugin)`` service option, and the HTTP routes of the
``google.api.http`` method option including ``additional_bindings``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.message import DecodeError

from meshkit.descriptors import file_from_default_pool
from plugmesh.options.v1 import options_pb2
from registry.model import Dependency, HttpRoute

#: gRPC services every instance serves for the mesh itself; never claimed by a plugin.
INFRASTRUCTURE_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    }
)
_HTTP_METHODS = ("get", "put", "post", "delete", "patch")
_VARIABLE = re.compile(r"\{[^}=]+(?:=([^}]*))?\}")


class SchemaError(ValueError):
    """The descriptors are unusable; ``field`` names the request field at fault."""

    def __init__(self, message: str, *, field: str = "file_descriptor_set") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Contract:
    """What a service's descriptors declare about it."""

    grpc_services: tuple[str, ...]
    version: str
    produces: tuple[str, ...]
    consumes: tuple[str, ...]
    dependencies: tuple[Dependency, ...]
    routes: tuple[HttpRoute, ...]
    schema: bytes
    schema_digest: str


def is_infrastructure(service: str) -> bool:
    """Whether ``service`` is health checking or reflection rather than a plugin's own."""
    return service in INFRASTRUCTURE_SERVICES or service.startswith("grpc.reflection.")


def read_contract(
    files: Sequence[descriptor_pb2.FileDescriptorProto], grpc_services: Sequence[str]
) -> Contract:
    """Read the contract of ``grpc_services`` from ``files``.

    When ``grpc_services`` is empty, every service defined in ``files`` except health
    checking and reflection is taken; a process serving none (the gateway, whose gRPC port
    only proxies) has an empty contract. Imports missing from ``files`` are filled in from
    the registry's own descriptor pool (well-known types, ``google.api``, the plugmesh
    options) when it has them.

    Raises:
        SchemaError: a service is not defined, an import is missing, or the files do not
            build.
    """
    by_name = {file.name: _reparsed(file) for file in files}
    if not grpc_services:
        grpc_services = [
            f"{_prefix(file.package)}{service.name}"
            for file in by_name.values()
            for service in file.service
            if not is_infrastructure(f"{_prefix(file.package)}{service.name}")
        ]
    services = list(dict.fromkeys(grpc_services))
    owners = _service_owners(by_name.values())
    missing = [name for name in services if name not in owners]
    if missing:
        raise SchemaError(f"no file defines gRPC service {missing[0]!r}")
    ordered = _closure([owners[name][0] for name in services], by_name)
    _check_builds(ordered)
    return _contract(services, owners, ordered)


def normalize_path(path: str) -> str:
    """Return a path template with variable names erased, for comparing routes.

    ``{user_id}`` and ``{id}`` both become ``*``; ``{name=shelves/*}`` becomes
    ``shelves/*``, so ``/v1/{name=shelves/*}`` and ``/v1/shelves/{shelf}`` compare equal.
    """
    return _VARIABLE.sub(lambda match: match.group(1) or "*", path)


def digest(files: Iterable[descriptor_pb2.FileDescriptorProto]) -> str:
    """A digest of the files that does not depend on their order."""
    hasher = hashlib.sha256()
    for serialized in sorted(file.SerializeToString(deterministic=True) for file in files):
        hasher.update(len(serialized).to_bytes(8, "big"))
        hasher.update(serialized)
    return "sha256:" + hasher.hexdigest()


def parse_descriptor_set(data: bytes) -> list[descriptor_pb2.FileDescriptorProto]:
    """Parse a serialized ``FileDescriptorSet``; raises :class:`SchemaError`."""
    try:
        return list(descriptor_pb2.FileDescriptorSet.FromString(data).file)
    except DecodeError as exc:
        raise SchemaError("file_descriptor_set is not a valid FileDescriptorSet") from exc


def _reparsed(file: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    # Options parsed before the option extensions were imported keep them as unknown
    # fields; parsing again now that they are known makes them readable as extensions.
    return descriptor_pb2.FileDescriptorProto.FromString(file.SerializeToString())


def _prefix(package: str) -> str:
    return f"{package}." if package else ""


def _service_owners(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> dict[str, tuple[str, descriptor_pb2.ServiceDescriptorProto, str]]:
    owners: dict[str, tuple[str, descriptor_pb2.ServiceDescriptorProto, str]] = {}
    for file in files:
        for service in file.service:
            owners[f"{_prefix(file.package)}{service.name}"] = (file.name, service, file.package)
    return owners


def _closure(
    roots: Sequence[str], by_name: dict[str, descriptor_pb2.FileDescriptorProto]
) -> list[descriptor_pb2.FileDescriptorProto]:
    ordered: list[descriptor_pb2.FileDescriptorProto] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str, importer: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise SchemaError(f"import cycle through {name!r}")
        file = by_name.get(name) or file_from_default_pool(name)
        if file is None:
            raise SchemaError(f"{importer!r} imports {name!r}, which is not in the descriptors")
        visiting.add(name)
        for dependency in file.dependency:
            visit(dependency, name)
        visiting.discard(name)
        done.add(name)
        ordered.append(file)

    for root in roots:
        visit(root, root)
    return ordered


def _check_builds(files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
    pool = descriptor_pool.DescriptorPool()
    for file in files:
        try:
            pool.Add(file)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"file {file.name!r} does not build: {exc}") from exc
    for file in files:
        try:
            pool.FindFileByName(file.name)
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"file {file.name!r} does not build: {exc}") from exc


def _contract(
    services: Sequence[str],
    owners: dict[str, tuple[str, descriptor_pb2.ServiceDescriptorProto, str]],
    files: Sequence[descriptor_pb2.FileDescriptorProto],
) -> Contract:
    version = ""
    produces: list[str] = []
    consumes: list[str] = []
    dependencies: list[Dependency] = []
    routes: list[HttpRoute] = []
    for name in services:
        _, service, _ = owners[name]
        if service.options.HasExtension(options_pb2.plugin):
            plugin = service.options.Extensions[options_pb2.plugin]
            version = version or plugin.version
            produces.extend(plugin.produces)
            consumes.extend(plugin.consumes)
            dependencies.extend(
                Dependency(d.service, d.version_range, d.optional) for d in plugin.dependencies
            )
        for method in service.method:
            if method.options.HasExtension(annotations_pb2.http):
                rule = method.options.Extensions[annotations_pb2.http]
                routes.extend(_routes(rule, f"{name}.{method.name}"))
    fds = descriptor_pb2.FileDescriptorSet(file=files)
    return Contract(
        grpc_services=tuple(services),
        version=version,
        produces=tuple(dict.fromkeys(produces)),
        consumes=tuple(dict.fromkeys(consumes)),
        dependencies=tuple(dict.fromkeys(dependencies)),
        routes=tuple(dict.fromkeys(routes)),
        schema=fds.SerializeToString(deterministic=True),
        schema_digest=digest(files),
    )


def _routes(rule: http_pb2.HttpRule, rpc: str) -> list[HttpRoute]:
    routes: list[HttpRoute] = []
    pattern = rule.WhichOneof("pattern")
    if pattern in _HTTP_METHODS:
        routes.append(HttpRoute(pattern.upper(), getattr(rule, pattern), rpc))
    elif pattern == "custom":
        routes.append(HttpRoute(rule.custom.kind.upper(), rule.custom.path, rpc))
    for binding in rule.additional_bindings:
        routes.extend(_routes(binding, rpc))
    return routes
