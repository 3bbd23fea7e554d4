"""Build the ``FileDescriptorSet`` a plugin sends to the registry at registration."""

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
