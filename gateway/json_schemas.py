"""JSON Schemas of protobuf messages, as the proto3 JSON mapping writes them.

lowerCamelCase properties, 64-bit integers as strings, enums by name,
Timestamp/Duration/FieldMask as strings, wrappers as their value, maps as objects.
Each message is one named schema that others reference, so recursive messages
stop. Given the contract's comments (:attr:`gateway.schemas.Schema.comments`), a
commented message or field has its comment as ``description``::

    schemas = MessageSchemas("#/components/schemas/", comments)   # OpenAPI
    schemas.ref(request_descriptor)          # {"$ref": "#/components/schemas/pkg.Request"}
    schemas.components                       # full name -> schema, every message reached

    message_schema(request_descriptor, comments)   # one self-contained JSON Schema (MCP tools)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor

__all__ = ["WELL_KNOWN", "MessageSchemas", "message_schema"]

_FD = descriptor.FieldDescriptor
_SCALARS: dict[int, dict[str, Any]] = {
    _FD.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _FD.TYPE_FLOAT: {"type": "number", "format": "float"},
    _FD.TYPE_INT64: {"type": "string", "format": "int64"},
    _FD.TYPE_UINT64: {"type": "string", "format": "uint64"},
    _FD.TYPE_SINT64: {"type": "string", "format": "int64"},
    _FD.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    _FD.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _FD.TYPE_INT32: {"type": "integer", "format": "int32"},
    _FD.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _FD.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _FD.TYPE_UINT32: {"type": "integer", "format": "uint32"},
    _FD.TYPE_FIXED32: {"type": "integer", "format": "uint32"},
    _FD.TYPE_BOOL: {"type": "boolean"},
    _FD.TYPE_STRING: {"type": "string"},
    _FD.TYPE_BYTES: {"type": "string", "format": "byte"},
}
WELL_KNOWN: dict[str, dict[str, Any]] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?\d+(\.\d+)?s$"},
    "google.protobuf.FieldMask": {"type": "string", "description": "comma-separated paths"},
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int64Value": {"type": ["string", "null"], "format": "int64"},
    "google.protobuf.UInt64Value": {"type": ["string", "null"], "format": "uint64"},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "format": "uint32"},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "format": "byte"},
}

_DEFS = "#/$defs/"


class MessageSchemas:
    """Collects a schema per message reached, referenced as ``<prefix><full name>``;
    ``comments`` (full name -> comment) describe messages and fields."""

    def __init__(self, prefix: str, comments: Mapping[str, str] | None = None) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._prefix = prefix
        self._comments: Mapping[str, str] = comments or {}

    def ref(self, message_type: descriptor.Descriptor) -> dict[str, Any]:
        name = message_type.full_name
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages stop here
            schema: dict[str, Any] = {"type": "object", "title": message_type.name}
            self._describe(schema, name)
            schema["properties"] = {f.json_name: self.field(f) for f in message_type.fields}
            self.components[name] = schema
        return {"$ref": f"{self._prefix}{name}"}

    def field(self, field: _FD) -> dict[str, Any]:
        """The schema of ``field``'s value, with its comment as ``description``."""
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value_field = message_type.fields_by_name["value"]
            schema = {"type": "object", "additionalProperties": self._single(value_field)}
        else:
            single = self._single(field)
            schema = {"type": "array", "items": single} if field.is_repeated else single
        return self._describe(schema, field.full_name)

    def _describe(self, schema: dict[str, Any], name: str) -> dict[str, Any]:
        comment = self._comments.get(name)
        if comment:
            # A well-known type's own note (FieldMask's) stays, after the comment.
            note = schema.get("description")
            schema["description"] = f"{comment}\n\n{note}" if note else comment
        return schema

    def _single(self, field: _FD) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            names = [value.name for value in field.enum_type.values]
            return {"type": "string", "enum": names}
        return dict(_SCALARS.get(field.type, {}))


def message_schema(
    message_type: descriptor.Descriptor, comments: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """One self-contained JSON Schema of ``message_type``: the message's own schema at
    the root, the messages it reaches under ``$defs``; ``comments`` as for
    :class:`MessageSchemas`."""
    schemas = MessageSchemas(_DEFS, comments)
    root = schemas.ref(message_type)
    name = message_type.full_name
    if name not in schemas.components:
        return root  # a well-known type, written as a value of its own
    schema = dict(schemas.components[name])
    referenced = json.dumps(schemas.components)
    defs = {
        other: value
        for other, value in sorted(schemas.components.items())
        if other != name or f'"{_DEFS}{name}"' in referenced
    }
    if defs:
        schema["$defs"] = defs
    return schema
