"""OpenAPI 3.1 for the live route table, with JSON Schemas from the message descriptors.

Paths follow the templates: ``{id}`` stays a path parameter, and each segment a pattern
leaves open becomes one (``/v1/{name=shelves/*/books/*}`` is
``/v1/shelves/{name.1}/books/{name.2}``). Bindings with a custom HTTP method (``SEARCH``) are left
out: an OpenAPI path item cannot hold them.

Schemas follow the proto3 JSON mapping the gateway speaks: lowerCamelCase properties,
64-bit integers as strings, enums by name, Timestamp/Duration/FieldMask as strings,
wrappers as their value. Each message is one component named by its full name; errors
are ``google.rpc.Status``. The protos' comments describe what they are on: an RPC's
its operation, a service's its tag, a message's and a field's their schemas (and a
field's its parameter). Streaming methods answer ``application/x-ndjson`` (and
``text/event-stream``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import descriptor

from gateway.auth.access import access_of, needs_credentials
from gateway.http.routes import HttpRoute
from gateway.http.template import PathTemplate, SegmentKind, Variable
from gateway.json_schemas import WELL_KNOWN, MessageSchemas
from plugmesh.options.v1 import options_pb2

__all__ = ["openapi_document"]

_FD = descriptor.FieldDescriptor
_STATUS = "google.rpc.Status"
_QUERY_DEPTH = 3
# How callers authenticate: what Swagger UI's Authorize button fills in.
_BEARER = "bearer"
_BEARER_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A machine user's token (pmk_…) or a JWT of the configured issuer.",
}
_OPENAPI_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"})


def openapi_document(routes: Iterable[HttpRoute[Any]], *, title: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document describing ``routes``."""
    routes = list(routes)
    comments = _comments(routes)
    schemas = MessageSchemas("#/components/schemas/", comments)
    tags: dict[str, dict[str, Any]] = {}
    paths: dict[str, dict[str, Any]] = {}
    operation_ids: set[str] = set()
    for route in routes:
        if route.http_method not in _OPENAPI_METHODS:
            continue  # a custom HTTP method (SEARCH) has no place in an OpenAPI path item
        operation = _operation(route, schemas, comments)
        service = route.rpc.containing_service.full_name
        tags.setdefault(service, _tag(service, comments))
        base = route.rpc.full_name
        operation_id, n = base, 1
        while operation_id in operation_ids:
            n += 1
            operation_id = f"{base}_{n}"
        operation_ids.add(operation_id)
        operation["operationId"] = operation_id
        path = paths.setdefault(_path(route.template)[0], {})
        path[route.http_method.lower()] = operation
    schemas.components[_STATUS] = {
        "type": "object",
        "description": "The error model of gRPC and of the gateway (google.rpc.Status).",
        "properties": {
            "code": {"type": "integer", "format": "int32"},
            "message": {"type": "string"},
            "details": {"type": "array", "items": WELL_KNOWN["google.protobuf.Any"]},
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1"},
        "tags": [tags[name] for name in sorted(tags)],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {_BEARER: _BEARER_SCHEME},
        },
    }


def _comments(routes: Iterable[HttpRoute[Any]]) -> Mapping[str, str]:
    """The comments of every contract the routes come from, the first one's winning for
    a name two define (as the first one's schema wins in the components)."""
    merged: dict[str, str] = {}
    seen: set[int] = set()
    for route in routes:
        comments = route.method.comments
        if id(comments) not in seen:
            seen.add(id(comments))
            for name, comment in comments.items():
                merged.setdefault(name, comment)
    return merged


def _tag(service: str, comments: Mapping[str, str]) -> dict[str, Any]:
    tag: dict[str, Any] = {"name": service}
    if comments.get(service):
        tag["description"] = comments[service]
    return tag


def _operation(
    route: HttpRoute[Any], schemas: MessageSchemas, comments: Mapping[str, str]
) -> dict[str, Any]:
    rpc = route.rpc
    request_type = rpc.input_type
    notes = [comments.get(rpc.full_name) or f"gRPC method {rpc.full_name}."]
    if not route.annotated:
        notes.append("No google.api.http rule: the whole request is the body.")
    access = access_of(rpc)
    if access == options_pb2.ACCESS_ADMIN:
        notes.append("Admins only.")
    operation: dict[str, Any] = {
        "tags": [rpc.containing_service.full_name],
        "summary": rpc.name,
        "description": "\n\n".join(notes),
    }
    # A public RPC takes a credential when one is given, and works without.
    operation["security"] = [{_BEARER: []}] if needs_credentials(access) else [{}, {_BEARER: []}]
    parameters = _path_parameters(route, schemas)
    bound = {variable.field_path for variable in route.template.variables}
    if route.body != "*":
        for name, schema in _query_fields(request_type, (), bound, route.body, schemas):
            parameters.append(_described({"name": name, "in": "query", "schema": schema}))
    if parameters:
        operation["parameters"] = parameters
    if route.body:
        if route.body == "*":
            body_schema = schemas.ref(request_type)
        else:
            body_schema = schemas.field(request_type.fields_by_name[route.body])
        operation["requestBody"] = {
            "required": route.body != "*",
            "content": {"application/json": {"schema": body_schema}},
        }
    response_type = rpc.output_type
    result = (
        schemas.field(response_type.fields_by_name[route.response_body])
        if route.response_body
        else schemas.ref(response_type)
    )
    status_ref = {"$ref": f"#/components/schemas/{_STATUS}"}
    if route.server_streaming:
        line = {
            "type": "object",
            "properties": {"result": result, "error": status_ref},
            "description": "one line per message; a last line with error if the stream fails",
        }
        content: dict[str, Any] = {
            "application/x-ndjson": {"schema": line},
            "text/event-stream": {"schema": {"type": "string"}},
        }
    else:
        content = {"application/json": {"schema": result}}
    operation["responses"] = {
        "200": {"description": "OK", "content": content},
        "default": {
            "description": "An error",
            "content": {"application/json": {"schema": status_ref}},
        },
    }
    return operation


def _path(template: PathTemplate) -> tuple[str, list[tuple[str, Variable | None]]]:
    """The OpenAPI path of a template and its parameters in order.

    A plain ``{field}`` stays as it is. Every segment a pattern leaves open becomes a
    parameter of its own (``{name=shelves/*/books/*}`` →
    ``shelves/{name.1}/books/{name.2}``; an unnamed ``*`` → ``{segment1}``), so that the
    path describes the URLs that match and each parameter is one segment.
    """
    parts: list[str] = []
    parameters: list[tuple[str, Variable | None]] = []
    owner: dict[int, Variable] = {}
    for each in template.variables:
        end = len(template.segments) if each.end is None else each.end
        owner.update(dict.fromkeys(range(each.start, end), each))
    counts: dict[str, int] = {}
    for index, segment in enumerate(template.segments):
        if segment.kind is SegmentKind.LITERAL:
            parts.append(segment.literal)
            continue
        variable = owner.get(index)
        if variable is not None and variable.single_segment and segment.kind is SegmentKind.SINGLE:
            name = variable.name
        else:
            base = variable.name + "." if variable is not None else "segment"
            counts[base] = counts.get(base, 0) + 1
            name = f"{base}{counts[base]}"
        parts.append("{" + name + "}")
        parameters.append((name, variable))
    path = "/" + "/".join(parts) + (f":{template.verb}" if template.verb else "")
    return path, parameters


def _path_parameters(route: HttpRoute[Any], schemas: MessageSchemas) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for name, variable in _path(route.template)[1]:
        parameter: dict[str, Any] = {"name": name, "in": "path", "required": True}
        if variable is not None and name == variable.name:
            parameter["schema"] = schemas.field(_leaf_field(route.rpc.input_type, variable))
            _described(parameter)
        else:
            parameter["schema"] = {"type": "string"}
            if variable is not None:
                pattern = route.template.source
                parameter["description"] = (
                    f"part of {variable.name}, which the gateway sets from the path ({pattern})"
                )
        found.append(parameter)
    return found


def _described(parameter: dict[str, Any]) -> dict[str, Any]:
    """The parameter with its field's comment as its own description, where Swagger UI
    shows it."""
    description = parameter["schema"].pop("description", None)
    if description:
        parameter["description"] = description
    return parameter


def _leaf_field(message_type: descriptor.Descriptor, variable: Variable) -> _FD:
    field: _FD | None = None
    for name in variable.field_path:
        field = message_type.fields_by_name[name]
        if field.message_type is not None:
            message_type = field.message_type
    assert field is not None
    return field


def _query_fields(
    message_type: descriptor.Descriptor,
    prefix: tuple[str, ...],
    bound: set[tuple[str, ...]],
    body: str,
    schemas: MessageSchemas,
) -> Iterable[tuple[str, dict[str, Any]]]:
    for field in message_type.fields:
        path = (*prefix, field.name)
        if path in bound or (body and path[0] == body):
            continue
        nested = field.message_type
        if nested is None or nested.full_name in WELL_KNOWN:
            yield ".".join(path), schemas.field(field)
        elif not field.is_repeated and len(path) < _QUERY_DEPTH:
            yield from _query_fields(nested, path, bound, body, schemas)
