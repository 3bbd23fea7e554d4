"""The toolkit's errors and their mapping to ``google.rpc.Status``.

Hierarchy::

    MeshError                 any failure a servicer reports to its caller
    ├── InvalidArgument       INVALID_ARGUMENT: the request is malformed; names the field
    ├── NotFound              NOT_FOUND: names the resource
    ├── AlreadyExists         ALREADY_EXISTS
    ├── FailedPrecondition    FAILED_PRECONDITION
    ├── Aborted               ABORTED: a concurrent change won; retry
    ├── PermissionDenied      PERMISSION_DENIED
    ├── Unauthenticated       UNAUTHENTICATED
    ├── ResourceExhausted     RESOURCE_EXHAUSTED
    └── Unavailable           UNAVAILABLE

Servicers raise these; :class:`~meshkit.interceptors.MeshInterceptor` turns them into a
``google.rpc.Status`` with one ``google.rpc.ErrorInfo`` at one boundary. Any other exception
becomes INTERNAL without its text reaching the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from meshkit.grpc_types import Context


class MeshError(Exception):
    """A failure reported to the caller as a ``google.rpc.Status``.

    Args:
        message: Human-readable text; names the field or resource that was wrong.
        reason: ``ErrorInfo.reason``, UPPER_SNAKE_CASE, stable for programs to match on.
        metadata: ``ErrorInfo.metadata``, for example the offending field.
    """

    code: ClassVar[grpc.StatusCode] = grpc.StatusCode.UNKNOWN

    def __init__(
        self, message: str, *, reason: str, metadata: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.metadata = dict(metadata or {})


class InvalidArgument(MeshError):
    """The request is malformed."""

    code = grpc.StatusCode.INVALID_ARGUMENT


def invalid_field(field: str, problem: str, **metadata: str) -> InvalidArgument:
    """An INVALID_ARGUMENT for a request field: ``"<field>: <problem>"``, reason
    ``INVALID_FIELD``, the field (as the caller spelled it, ``user.permissions.rules[2]``)
    and ``metadata`` in the ``ErrorInfo``."""
    return InvalidArgument(
        f"{field}: {problem}", reason="INVALID_FIELD", metadata={"field": field, **metadata}
    )


class NotFound(MeshError):
    """The named resource does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(MeshError):
    """The resource, or something it claims, already exists."""

    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(MeshError):
    """The system is not in a state where the call can succeed."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(MeshError):
    """A concurrent change won; the caller may retry."""

    code = grpc.StatusCode.ABORTED


class PermissionDenied(MeshError):
    """The caller is known but not allowed to do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(MeshError):
    """The caller did not prove who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED


class ResourceExhausted(MeshError):
    """A limit was reached."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class Unavailable(MeshError):
    """A dependency is down; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


def to_status(error: MeshError, domain: str) -> status_pb2.Status:
    """Build the ``google.rpc.Status`` for ``error`` with one ``ErrorInfo``."""
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=domain, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=error.code.value[0], message=error.message, details=[detail])


def internal_status(domain: str) -> status_pb2.Status:
    """The Status sent for an unexpected failure; its cause stays in the server's log."""
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=domain)
    detail = any_pb2.Any()
    detail.Pack(info)
    return status_pb2.Status(code=code_pb2.INTERNAL, message="internal error", details=[detail])


STATUS_DETAILS_KEY = "grpc-status-details-bin"


async def abort(context: Context, status: status_pb2.Status) -> None:
    """End the call with ``status``: its code, message and details in the trailers."""
    await context.abort(
        _CODES.get(status.code, grpc.StatusCode.UNKNOWN),
        status.message,
        ((STATUS_DETAILS_KEY, status.SerializeToString()),),
    )


def status_of(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """Return the ``google.rpc.Status`` of a failed call, built from its code if it sent none."""
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo | None:
    """Return the ``ErrorInfo`` carried by a failed call, if any."""
    for detail in status_of(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    return None


_CODES = {code.value[0]: code for code in grpc.StatusCode}
