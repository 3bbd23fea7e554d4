"""Descriptors on the wire: the ``FileDescriptorSet`` a plugin sends to the registry at
registration, and a pool built from one a process receives (:func:`build_pool`).

Generated code keeps no comments, so the files a plugin sends get theirs
(``source_code_info``) from a descriptor set written by ``protoc --include_source_info``:
plugmesh's own protos ship one beside their generated code
(``gen/plugmesh/descriptors.binpb``, written by ``make gen``); a plugin with protos of
its own passes its set to :func:`file_descriptor_set`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from importlib import resources
from types import MappingProxyType

from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from plugmesh.options.v1 import options_pb2

log = logging.getLogger(__name__)

_SHIPPED = "descriptors.binpb"


def file_descriptor_set(
    services: Iterable[descriptor.ServiceDescriptor],
    *,
    source_info: descriptor_pb2.FileDescriptorSet | None = None,
) -> descriptor_pb2.FileDescriptorSet:
    """Return the files defining ``services`` and everything they import, imports first.

    Each file carries the ``source_code_info`` of the file of the same name in
    ``source_info`` or in plugmesh's own set, when there is one that declares the same
    elements; otherwise it goes without.
    """
    commented = dict(shipped_source_info())
    if source_info is not None:
        commented.update((file.name, file) for file in source_info.file)
    result = descriptor_pb2.FileDescriptorSet()
    seen: set[str] = set()

    def add(file: descriptor.FileDescriptor) -> None:
        if file.name in seen:
            return
        seen.add(file.name)
        for dependency in file.dependencies:
            add(dependency)
        proto = result.file.add()
        file.CopyToProto(proto)
        source = commented.get(file.name)
        if source is None:
            return
        if _outline(source) != _outline(proto):
            log.warning(
                "a file's source info is not of its generated code", extra={"file": file.name}
            )
            return
        proto.source_code_info.CopyFrom(source.source_code_info)

    for service in services:
        add(service.file)
    return result


@functools.cache
def shipped_source_info() -> Mapping[str, descriptor_pb2.FileDescriptorProto]:
    """The files of plugmesh's own protos with their source info, by name; empty when
    the set is not installed."""
    try:
        data = resources.files("plugmesh").joinpath(_SHIPPED).read_bytes()
    except FileNotFoundError:
        return MappingProxyType({})
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    return MappingProxyType({file.name: file for file in files})


def _outline(file: descriptor_pb2.FileDescriptorProto) -> tuple[object, ...]:
    """The names of the file's elements in order: what the paths of source locations
    index. Two files with one outline take the same source info."""

    def message(m: descriptor_pb2.DescriptorProto) -> tuple[object, ...]:
        return (
            m.name,
            [f.name for f in m.field],
            [message(n) for n in m.nested_type],
            [enum(e) for e in m.enum_type],
            [f.name for f in m.extension],
            [o.name for o in m.oneof_decl],
        )

    def enum(e: descriptor_pb2.EnumDescriptorProto) -> tuple[object, ...]:
        return (e.name, [v.name for v in e.value])

    return (
        file.package,
        [message(m) for m in file.message_type],
        [enum(e) for e in file.enum_type],
        [(s.name, [m.name for m in s.method]) for s in file.service],
        [f.name for f in file.extension],
    )


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
