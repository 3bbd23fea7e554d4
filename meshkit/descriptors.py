"""Descriptors on the wire: the ``FileDescriptorSet`` a plugin sends to the registry at
registration, and a pool built from one a process receives (:func:`build_pool`)."""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from plugmesh.options.v1 import options_pb2


def file_descriptor_set(
    services: Iterable[descriptor.ServiceDescriptor],
) -> descriptor_pb2.FileDescriptorSet:
    """Return the files defining ``services`` and everything they import, imports first."""
    result = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: descriptor.FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        file.CopyToProto(result.file.add())

    for service in services:
        add(service.file)
    return result


_SAFE_LEVELS = frozenset(
    {descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS, descriptor_pb2.MethodOptions.IDEMPOTENT}
)


def is_safe_to_retry(method: descriptor.MethodDescriptor) -> bool:
    """Whether ``idempotency_level`` is NO_SIDE_EFFECTS or IDEMPOTENT: a failed call of
    ``method`` may be made again."""
    return method.GetOptions().idempotency_level in _SAFE_LEVELS


def plugin_version(service: descriptor.ServiceDescriptor) -> str:
    """Return the version a service declares with ``(plugmesh.options.v1.plugin)``."""
    options = service.GetOptions()
    if not options.HasExtension(options_pb2.plugin):
        return ""
    return options.Extensions[options_pb2.plugin].version


def file_from_default_pool(name: str) -> descriptor_pb2.FileDescriptorProto | None:
    """Return the file ``name`` from this process's default pool, or ``None``."""
    try:
        file = descriptor_pool.Default().FindFileByName(name)
    except KeyError:
        return None
    proto = descriptor_pb2.FileDescriptorProto()
    file.CopyToProto(proto)
    return proto


class PoolError(ValueError):
    """Files do not build into a descriptor pool: one fails, or an import is missing."""


def build_pool(
    files: Iterable[descriptor_pb2.FileDescriptorProto],
) -> tuple[descriptor_pool.DescriptorPool, dict[str, bytes]]:
    """Load ``files`` into a new pool, imports first; imports they lack come from the
    default pool (well-known types, ``google.api``, the plugmesh options).

    Returns:
        The pool, and every file it holds, serialized, by name.

    Raises:
        PoolError: a file does not build or an import is missing.
    """
    by_name = {file.name: file for file in files}
    pool = descriptor_pool.DescriptorPool()
    added: dict[str, bytes] = {}

    def add(name: str, importer: str) -> None:
        if name in added:
            return
        file = by_name.get(name) or file_from_default_pool(name)
        if file is None:
            raise PoolError(f"{importer!r} imports {name!r}, which is not in the schema")
        added[name] = b""  # marks it in progress: an import cycle stops here
        for dependency in file.dependency:
            add(dependency, name)
        try:
            pool.Add(file)
        except (TypeError, ValueError) as exc:
            raise PoolError(f"file {name!r} does not build: {exc}") from exc
        added[name] = file.SerializeToString()

    for name in by_name:
        add(name, name)
    return pool, added
