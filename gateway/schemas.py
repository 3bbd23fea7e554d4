"""A service's contract loaded into a descriptor pool of its own.

One pool per schema digest, not one merged pool: two plugins may ship different files
under the same name (``common.proto``), and a plugin that registers again with a changed
contract brings new versions of its own files; a shared pool would refuse either. Pools
are cached by digest in the catalog, so instances of one service share theirs.

Options of the methods (``google.api.http``, ``plugmesh.options.v1.access``,
``idempotency_level``) are readable with ``method.GetOptions()``: the extension modules
are imported here, before any pool parses them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from google.api import annotations_pb2  # noqa: F401  # registers google.api.http
from google.protobuf import descriptor, descriptor_pb2, descriptor_pool

from gateway.comments import leading_comments
from meshkit.descriptors import PoolError, build_pool
from plugmesh.options.v1 import options_pb2  # noqa: F401  # registers the plugmesh options


class SchemaError(ValueError):
    """The descriptors do not build into a pool."""


@dataclass(frozen=True)
class Schema:
    """The descriptors of one contract version, identified by their digest.

    Attributes:
        digest: The registry's digest of the files.
        pool: A pool holding every file and everything it imports.
        files: Each file, serialized, by name (what server reflection sends).
        comments: The leading comment of each commented message, field, service and
            method, by full name (:mod:`gateway.comments`); the pool keeps none.
    """

    digest: str
    pool: descriptor_pool.DescriptorPool
    files: Mapping[str, bytes]
    comments: Mapping[str, str]

    @classmethod
    def build(cls, digest: str, files: descriptor_pb2.FileDescriptorSet) -> Schema:
        """Load ``files`` into a new pool; imports they lack come from the default pool.

        Raises:
            SchemaError: a file does not build or an import is missing.
        """
        try:
            pool, added = build_pool(files.file)
        except PoolError as exc:
            raise SchemaError(str(exc)) from exc
        comments = leading_comments(files.file)
        return cls(digest, pool, MappingProxyType(added), MappingProxyType(comments))

    def service(self, full_name: str) -> descriptor.ServiceDescriptor | None:
        """The gRPC service called ``full_name``, if this schema defines it."""
        try:
            return self.pool.FindServiceByName(full_name)
        except KeyError:
            return None

    def file_containing(self, symbol: str) -> str | None:
        """The name of the file defining ``symbol``: a message, enum, service, method or
        field, or ``None``."""
        try:
            return self.pool.FindFileContainingSymbol(symbol).name
        except KeyError:
            pass
        # The upb pool finds services and messages but not their members.
        parent, _, member = symbol.rpartition(".")
        if not parent:
            return None
        try:
            service = self.pool.FindServiceByName(parent)
            return service.file.name if member in service.methods_by_name else None
        except KeyError:
            pass
        try:
            message = self.pool.FindMessageTypeByName(parent)
        except KeyError:
            return None
        return message.file.name if member in message.fields_by_name else None

    def file_with_imports(self, name: str) -> Iterator[tuple[str, bytes]]:
        """``name`` and its serialized form, then every file it imports, transitively."""
        seen: set[str] = set()
        pending = [name]
        while pending:
            current = pending.pop()
            if current in seen or current not in self.files:
                continue
            seen.add(current)
            yield current, self.files[current]
            pending.extend(d.name for d in self.pool.FindFileByName(current).dependencies)

    def extension(self, message: str, number: int) -> str | None:
        """The file declaring extension ``number`` of ``message``, or ``None``."""
        try:
            extended = self.pool.FindMessageTypeByName(message)
            found = self.pool.FindExtensionByNumber(extended, number)
            return self.pool.FindFileContainingSymbol(found.full_name).name
        except KeyError:
            return None

    def extension_numbers(self, message: str) -> list[int] | None:
        """Every extension number of ``message`` known here, or ``None`` if it is unknown."""
        try:
            extended = self.pool.FindMessageTypeByName(message)
        except KeyError:
            return None
        return sorted(ext.number for ext in self.pool.FindAllExtensions(extended))
