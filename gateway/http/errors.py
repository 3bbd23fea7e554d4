"""HTTP errors of the gateway, and ``google.rpc.Status`` as HTTP/JSON.

Hierarchy::

    HttpError               an HTTP error answer with a google.rpc.Status body
    ├── BadRequest          400 INVALID_ARGUMENT: bad JSON, wrong types, unknown query
    │                       parameters; the message names the field
    ├── RouteNotFound       404 NOT_FOUND: no route has this path
    ├── MethodNotAllowed    405 UNIMPLEMENTED: the path exists for other methods (Allow)
    └── PayloadTooLarge     413 RESOURCE_EXHAUSTED: the body is over the limit

Upstream failures arrive as ``grpc.aio.AioRpcError``; :func:`status_of_rpc_error` turns
them into a ``google.rpc.Status`` at one place and :data:`HTTP_STATUS` gives the HTTP
status of its code (the table of ``google/rpc/code.proto``, which DESIGN §5 pins).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, ClassVar

import grpc
from google.protobuf import any_pb2, json_format, message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from meshkit.errors import status_of

__all__ = [
    "ERROR_DOMAIN",
    "HTTP_STATUS",
    "BadRequest",
    "HttpError",
    "MethodNotAllowed",
    "PayloadTooLarge",
    "RouteNotFound",
    "http_status",
    "status_json",
    "status_of_rpc_error",
]

ERROR_DOMAIN = "gateway.plugmesh"

#: gRPC code → HTTP status.
HTTP_STATUS: Mapping[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
    code_pb2.UNAUTHENTICATED: 401,
}


def http_status(code: int) -> int:
    """The HTTP status for a gRPC code; 500 for a code it does not know."""
    return HTTP_STATUS.get(code, 500)


class HttpError(Exception):
    """An error answer built by the gateway itself.

    Args:
        message: Human-readable; names the field or the path that was wrong.
        reason: ``ErrorInfo.reason``, stable for programs to match on.
        metadata: ``ErrorInfo.metadata``, for example ``{"field": "page_size"}``.
        headers: Extra response headers (``Allow``).
    """

    status: ClassVar[int] = 500
    code: ClassVar[int] = code_pb2.INTERNAL

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        metadata: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.headers = dict(headers or {})

    def to_status(self) -> status_pb2.Status:
        """The ``google.rpc.Status`` sent as the body, with one ``ErrorInfo``."""
        info = error_details_pb2.ErrorInfo(
            reason=self.reason, domain=ERROR_DOMAIN, metadata=self.metadata
        )
        detail = any_pb2.Any()
        detail.Pack(info)
        return status_pb2.Status(code=self.code, message=self.message, details=[detail])


class BadRequest(HttpError):
    """400: the request cannot be transcoded."""

    status = 400
    code = code_pb2.INVALID_ARGUMENT


class RouteNotFound(HttpError):
    """404: no route matches the path."""

    status = 404
    code = code_pb2.NOT_FOUND


class MethodNotAllowed(HttpError):
    """405: routes match the path, for other methods."""

    status = 405
    code = code_pb2.UNIMPLEMENTED


class PayloadTooLarge(HttpError):
    """413: the request body is over the limit."""

    status = 413
    code = code_pb2.RESOURCE_EXHAUSTED


def status_of_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a failed upstream call (from its trailers or code)."""
    try:
        return status_of(error)
    except message.DecodeError:  # a malformed grpc-status-details-bin: code and text only
        return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def status_dict(status: status_pb2.Status) -> dict[str, Any]:
    """``status`` as proto3 JSON; details of a type the gateway does not know are kept as
    ``{"@type": …, "value": <base64>}`` instead of failing."""
    return {
        "code": status.code,
        "message": status.message,
        "details": [_detail(detail) for detail in status.details],
    }


def status_json(status: status_pb2.Status) -> bytes:
    """``status`` serialized as the JSON body of an error answer."""
    return json.dumps(status_dict(status), separators=(",", ":")).encode()


def _detail(detail: any_pb2.Any) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(detail)
    except (TypeError, KeyError, json_format.Error):
        return {
            "@type": detail.type_url,
            "value": base64.b64encode(detail.value).decode("ascii"),
        }
