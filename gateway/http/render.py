"""Response messages → proto3 JSON, and the framings of server streams.

JSON is ``json_format``'s: lowerCamelCase names, 64-bit integers as strings, enums by
name, every field without presence emitted even when it holds its default. A binding's
``response_body`` sends that one field instead of the whole message.

A response of type ``google.api.HttpBody`` (the whole response, or the ``response_body``
field) is not JSON: its ``data`` is the answer, with its own ``content_type``
(``application/octet-stream`` when it names none); a stream of them is their ``data`` one
after another, with the first one's content type, as grpc-gateway and Envoy answer.

Streams: newline-delimited JSON (``application/x-ndjson``), one ``{"result": …}`` line
per message and a last ``{"error": Status}`` line when the stream fails after it began;
or, when the client accepts ``text/event-stream``, server-sent events: a ``data:`` event
per message (the message itself) and an ``event: error`` event with the Status.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format, message
from google.rpc import status_pb2

from gateway.http.errors import status_dict
from gateway.http.routes import HttpRoute

__all__ = [
    "NDJSON",
    "SSE",
    "UpstreamDecodeError",
    "dumps",
    "is_http_body",
    "ndjson_error",
    "ndjson_result",
    "raw_body",
    "response_value",
    "sse_error",
    "sse_result",
]

HTTP_BODY = "google.api.HttpBody"
OCTET_STREAM = b"application/octet-stream"
NDJSON = b"application/x-ndjson"
SSE = b"text/event-stream"


class UpstreamDecodeError(Exception):
    """An upstream answered bytes that are not the declared response message."""


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def is_http_body(route: HttpRoute[Any]) -> bool:
    """Whether ``route`` answers a ``google.api.HttpBody`` (raw bytes, not JSON)."""
    answered = route.response_class.DESCRIPTOR
    if route.response_body:
        field = answered.fields_by_name[route.response_body]
        if field.message_type is None or field.is_repeated:
            return False
        answered = field.message_type
    return bool(answered.full_name == HTTP_BODY)


def raw_body(route: HttpRoute[Any], payload: bytes) -> tuple[bytes, bytes]:
    """The bytes and content type sent for one ``google.api.HttpBody`` response."""
    response = _decoded(route, payload)
    # The route's own class of google.api.HttpBody, built from its descriptor.
    body: Any = getattr(response, route.response_body) if route.response_body else response
    content_type = body.content_type.encode("latin-1", errors="replace") or OCTET_STREAM
    return bytes(body.data), content_type


def _decoded(route: HttpRoute[Any], payload: bytes) -> message.Message:
    try:
        return route.response_class.FromString(payload)
    except message.DecodeError as exc:
        raise UpstreamDecodeError(
            f"the response of {route.rpc.full_name} does not decode: {exc}"
        ) from None


def response_value(route: HttpRoute[Any], payload: bytes) -> Any:
    """The JSON value sent for one serialized response message of ``route``."""
    response = _decoded(route, payload)
    if route.response_body:
        field = response.DESCRIPTOR.fields_by_name[route.response_body]
        if field.message_type is not None and not field.is_repeated:
            return _to_dict(getattr(response, route.response_body))
        return _to_dict(response).get(field.json_name)
    return _to_dict(response)


def ndjson_result(value: Any) -> bytes:
    """One NDJSON line for a stream message."""
    return b'{"result":' + dumps(value) + b"}\n"


def ndjson_error(status: status_pb2.Status) -> bytes:
    """The NDJSON line that ends a failed stream."""
    return b'{"error":' + dumps(status_dict(status)) + b"}\n"


def sse_result(value: Any) -> bytes:
    """One server-sent event for a stream message."""
    return b"data: " + dumps(value) + b"\n\n"


def sse_error(status: status_pb2.Status) -> bytes:
    """The server-sent event that ends a failed stream."""
    return b"event: error\ndata: " + dumps(status_dict(status)) + b"\n\n"


def _to_dict(value: message.Message) -> Any:
    return json_format.MessageToDict(value, always_print_fields_with_no_presence=True)
