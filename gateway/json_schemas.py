"""JSON Schemas of protobuf messages, as the proto3 JSON mapping writes them.

lowerCamelCase properties, 64-bit integers as strings, enums by name,
Timestamp/Duration/FieldMask as strings, wrappers as their value, maps as objects.
Each message is one named schema that others reference, so recursive messages
stop::

    schemas = MessageSchemas("#/components/schemas/")   # OpenAPI
    schemas.ref(request_descriptor)          # {"$ref": "#/components/schemas/pkg.Request"}
    schemas.components                       # full name -> schema, every message reached

    message_schema(request_descriptor)       # one self-contained JSON Schema (MCP tools)
"""

from __future__ import annotations

import json
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
    """Collects a schema per message reached, referenced as ``<prefix><full name>``."""

    def __init__(self, prefix: str) -> None:
        self.components: dict[str, dict[str, Any]] = {}
        self._prefix = prefix

    def ref(self, message_type: descriptor.Descriptor) -> dict[str, Any]:
        name = message_type.full_name
        if name in WELL_KNOWN:
            return dict(WELL_KNOWN[name])
        if name not in self.components:
            self.components[name] = {}  # placeholder: recursive messages stop here
            self.components[name] = {
                "type": "object",
                "title": message_type.name,
                "properties": {f.json_name: self.field(f) for f in message_type.fields},
            }
        return {"$ref": f"{self._prefix}{name}"}

    def field(self, field: _FD) -> dict[str, Any]:
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value_field = message_type.fields_by_name["value"]
            return {"type": "object", "additionalProperties": self._single(value_field)}
        single = self._single(field)
        return {"type": "array", "items": single} if field.is_repeated else single

    def _single(self, field: _FD) -> dict[str, Any]:
        if field.message_type is not None:
            return self.ref(field.message_type)
        if field.enum_type is not None:
            names = [value.name for value in field.enum_type.values]
            return {"type": "string", "enum": names}
        return dict(_SCALARS.get(field.type, {}))


def message_schema(message_type: descriptor.Descriptor) -> dict[str, Any]:
    """One self-contained JSON Schema of ``message_type``: the message's own schema at
    the root, the messages it reaches under ``$defs``."""
    schemas = MessageSchemas(_DEFS)
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
