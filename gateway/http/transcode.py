"""HTTP request → request message, per the route's ``google.api.http`` binding.

Three sources fill the message, applied in this order so that the later one wins on the
same field: the body (``body: "*"`` the whole message, ``body: "field"`` that field, none),
the query string (every field not bound by the path or the body), the path variables.
All conversion from JSON values is ``json_format``'s; this module only decides which
value goes to which field and turns query strings into JSON values.

Query parameters: ``a.b.c=`` for nested fields (proto or JSON names), ``x=1&x=2`` for
repeated fields, enums by name or number, Timestamp/Duration/FieldMask/wrappers in their
proto3-JSON string form, ``true``/``false`` for booleans. A parameter that names a field
the path binds is ignored: the path wins, as grpc-gateway and Envoy decide. A parameter
that names no field, names a field the body binds, or names a message, map or repeated
message field is a 400.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import descriptor, json_format, message

from gateway.http.errors import BadRequest
from gateway.http.routes import HttpRoute

__all__ = ["decode_json_body", "transcode_request"]

_FD = descriptor.FieldDescriptor
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
# Messages with a proto3-JSON string form, so they may be set from one query value.
_WELL_KNOWN = frozenset(
    {
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int64Value",
        "google.protobuf.UInt64Value",
        "google.protobuf.Int32Value",
        "google.protobuf.UInt32Value",
        "google.protobuf.BoolValue",
        "google.protobuf.StringValue",
        "google.protobuf.BytesValue",
    }
)


def transcode_request(
    route: HttpRoute[Any],
    path_values: Mapping[tuple[str, ...], str],
    query: Iterable[tuple[str, str]],
    body: Any,
) -> message.Message:
    """Build the request message of ``route``.

    Args:
        route: The matched binding.
        path_values: Field path → decoded value of each path variable.
        query: The query string's (name, value) pairs, decoded, in order.
        body: The request body as decoded JSON (``None`` when there was none); ignored
            when the binding takes no body.

    Raises:
        BadRequest: a value does not fit its field, or a query parameter is unknown.
    """
    request = route.request_class()
    if route.body and body is not None:
        if route.body == "*":
            if not isinstance(body, dict):
                raise BadRequest(
                    "the request body must be a JSON object",
                    reason="INVALID_BODY",
                    metadata={"field": "*"},
                )
            _parse(body, request, "request body")
        else:
            _parse({route.body: body}, request, "request body")
    pairs = list(query)
    if pairs:
        _parse(_query_dict(route, path_values, pairs), request, "query parameter")
    if path_values:
        nested: dict[str, Any] = {}
        for field_path, value in path_values.items():
            field = _leaf(route.rpc.input_type, field_path)
            _put(nested, field_path, _scalar(field, value, ".".join(field_path)))
        _parse(nested, request, "path variable")
    return request


def decode_json_body(raw: bytes) -> Any:
    """Decode a JSON request body; ``None`` for an empty one.

    Raises:
        BadRequest: the body is not UTF-8 JSON.
    """
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadRequest(
            f"the request body is not valid JSON: {exc}", reason="INVALID_JSON"
        ) from None


def _parse(values: dict[str, Any], request: message.Message, source: str) -> None:
    try:
        json_format.ParseDict(values, request)
    except json_format.ParseError as exc:
        text = str(exc).replace("\n", " ")
        raise BadRequest(f"invalid {source}: {text}", reason="INVALID_FIELD") from None
    except (TypeError, ValueError, AttributeError, RecursionError, OverflowError) as exc:
        # json_format lets a few type mismatches through as Python errors (an enum given
        # as 1e400 is an OverflowError).
        raise BadRequest(f"invalid {source}: {exc}", reason="INVALID_FIELD") from None


def _query_dict(
    route: HttpRoute[Any],
    path_values: Mapping[tuple[str, ...], str],
    pairs: list[tuple[str, str]],
) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    seen: set[tuple[str, ...]] = set()
    for name, value in pairs:
        fields = _fields(route.rpc.input_type, name)
        path = tuple(field.name for field in fields)
        if any(path[: len(p)] == p or p[: len(path)] == path for p in path_values):
            continue  # the path's value wins
        if route.body == "*" or (route.body and path[0] == route.body):
            raise BadRequest(
                f"query parameter {name!r} sets a field that the body binds",
                reason="UNKNOWN_QUERY_PARAMETER",
                metadata={"parameter": name},
            )
        leaf = fields[-1]
        converted = _scalar(leaf, value, name)
        if leaf.is_repeated:
            slot = _put(nested, path, [], keep=True)
            slot.append(converted)
        elif path in seen:
            raise BadRequest(
                f"query parameter {name!r} is given more than once for a field that is not "
                "repeated",
                reason="REPEATED_QUERY_PARAMETER",
                metadata={"parameter": name},
            )
        else:
            _put(nested, path, converted)
        seen.add(path)
    return nested


def _fields(message_type: descriptor.Descriptor, name: str) -> list[_FD]:
    fields: list[_FD] = []
    current: descriptor.Descriptor | None = message_type
    parts = name.split(".")
    for index, part in enumerate(parts):
        field = None if current is None else _field(current, part)
        if field is None:
            raise BadRequest(
                f"unknown query parameter {name!r}",
                reason="UNKNOWN_QUERY_PARAMETER",
                metadata={"parameter": name},
            )
        fields.append(field)
        last = index == len(parts) - 1
        message_name = _message_name(field)
        is_message = message_name is not None
        well_known = message_name in _WELL_KNOWN
        if last and is_message and not well_known:
            raise BadRequest(
                f"query parameter {name!r} names a message field; set its fields ({name}.x=)",
                reason="UNKNOWN_QUERY_PARAMETER",
                metadata={"parameter": name},
            )
        if not last and (not is_message or well_known or field.is_repeated):
            current = None  # nothing below a scalar, WKT, map or repeated field
        elif not last:
            current = field.message_type
    return fields


def _field(message_type: descriptor.Descriptor, name: str) -> _FD | None:
    field = message_type.fields_by_name.get(name)
    if field is not None:
        return field
    for candidate in message_type.fields:
        if candidate.json_name == name:
            return candidate
    return None


def _message_name(field: _FD) -> str | None:
    message_type = field.message_type
    return None if message_type is None else str(message_type.full_name)


def _leaf(message_type: descriptor.Descriptor, path: tuple[str, ...]) -> _FD:
    current: descriptor.Descriptor | None = message_type
    for name in path[:-1]:
        assert current is not None  # the route table checked the path
        current = current.fields_by_name[name].message_type
    assert current is not None
    return current.fields_by_name[path[-1]]


def _scalar(field: _FD, value: str, name: str) -> Any:
    """The JSON value ``json_format`` expects for one query or path string."""
    if field.type == _FD.TYPE_BOOL or _message_name(field) == "google.protobuf.BoolValue":
        try:
            return _BOOLS[value.lower()]
        except KeyError:
            raise BadRequest(
                f"{name}: expected true or false, got {value!r}",
                reason="INVALID_FIELD",
                metadata={"field": name},
            ) from None
    return value


def _put(nested: dict[str, Any], path: tuple[str, ...], value: Any, *, keep: bool = False) -> Any:
    for name in path[:-1]:
        nested = nested.setdefault(name, {})
    if keep:
        return nested.setdefault(path[-1], value)
    nested[path[-1]] = value
    return value
