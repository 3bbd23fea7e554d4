"""The comments of a contract, read from the ``source_code_info`` of its files.

Descriptor pools keep no comments, so they are read from the files as the registry
returns them: each element's leading comment, with the ``//`` layout trimmed (the space
after the slashes, the indentation, blank lines around), by the element's full name::

    comments = leading_comments(files)
    comments["plugmesh.users.v1.UserService.GetUser"]   # "Gets one user. Callers who …"
    comments["plugmesh.users.v1.GetUserRequest.user_id"]   # a field's comment

Messages, their fields, services and their methods are read; detached comments (those
a blank line separates from the element), trailing comments and buf's
``buf:lint:ignore`` lines are not descriptions and are left out.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable

from google.protobuf import descriptor_pb2

__all__ = ["leading_comments"]

_File = descriptor_pb2.FileDescriptorProto
_Message = descriptor_pb2.DescriptorProto
_Service = descriptor_pb2.ServiceDescriptorProto
_Path = tuple[int, ...]


def leading_comments(files: Iterable[_File]) -> dict[str, str]:
    """Each commented message, field, service and method of ``files`` by full name."""
    found: dict[str, str] = {}
    for file in files:
        names = _names(file)
        for location in file.source_code_info.location:
            name = names.get(tuple(location.path))
            text = _trimmed(location.leading_comments)
            if name is not None and text:
                found[name] = text
    return found


def _names(file: _File) -> dict[_Path, str]:
    """The full name of each message, field, service and method, by its path in the file."""
    names: dict[_Path, str] = {}

    def message(found: _Message, path: _Path, scope: str) -> None:
        name = f"{scope}{found.name}"
        names[path] = name
        for index, field in enumerate(found.field):
            names[(*path, _Message.FIELD_FIELD_NUMBER, index)] = f"{name}.{field.name}"
        for index, nested in enumerate(found.nested_type):
            message(nested, (*path, _Message.NESTED_TYPE_FIELD_NUMBER, index), f"{name}.")

    scope = f"{file.package}." if file.package else ""
    for index, found in enumerate(file.message_type):
        message(found, (_File.MESSAGE_TYPE_FIELD_NUMBER, index), scope)
    for index, service in enumerate(file.service):
        path = (_File.SERVICE_FIELD_NUMBER, index)
        names[path] = f"{scope}{service.name}"
        for number, method in enumerate(service.method):
            names[(*path, _Service.METHOD_FIELD_NUMBER, number)] = (
                f"{scope}{service.name}.{method.name}"
            )
    return names


def _trimmed(comment: str) -> str:
    lines = [line.rstrip() for line in comment.splitlines()]
    kept = [line for line in lines if not line.strip().startswith("buf:lint:")]
    return textwrap.dedent("\n".join(kept)).strip()
