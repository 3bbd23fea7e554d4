"""Why the gateway refuses a call, before any plugin sees it.

Hierarchy::

    AuthError               a refusal, with a google.rpc.ErrorInfo reason
    ├── AuthFailed          401 UNAUTHENTICATED: no usable credential; published as
    │                       ``auth.failed`` (with a fingerprint, never the credential)
    ├── Forbidden           403 PERMISSION_DENIED: authenticated, not allowed
    └── AuthUnavailable     503 UNAVAILABLE: a credential could not be checked (the
                            machine-users service is down); not the caller's fault

:mod:`gateway.auth.for_http` and :mod:`gateway.auth.for_grpc` turn them into
``google.rpc.Status`` answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import grpc

from plugmesh.events.v1 import auth_events_pb2

__all__ = ["AuthError", "AuthFailed", "AuthUnavailable", "Forbidden"]

Reason: TypeAlias = auth_events_pb2.AuthFailureReason.ValueType
CredentialType: TypeAlias = auth_events_pb2.CredentialType.ValueType

#: ErrorInfo reasons of the 401 answers, by failure reason.
_REASONS: Mapping[int, str] = {
    auth_events_pb2.AUTH_FAILURE_REASON_MISSING_CREDENTIALS: "AUTHENTICATION_REQUIRED",
    auth_events_pb2.AUTH_FAILURE_REASON_MALFORMED: "MALFORMED_CREDENTIALS",
    auth_events_pb2.AUTH_FAILURE_REASON_INVALID_SIGNATURE: "INVALID_SIGNATURE",
    auth_events_pb2.AUTH_FAILURE_REASON_INVALID_CLAIMS: "INVALID_CLAIMS",
    auth_events_pb2.AUTH_FAILURE_REASON_EXPIRED: "CREDENTIALS_EXPIRED",
    auth_events_pb2.AUTH_FAILURE_REASON_UNKNOWN_TOKEN: "UNKNOWN_TOKEN",
}


class AuthError(Exception):
    """A call the gateway refuses.

    Args:
        message: Human-readable; never quotes the credential.
        reason: ``ErrorInfo.reason``.
    """

    http_status = 500
    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason


class AuthFailed(AuthError):
    """401: the caller is not authenticated.

    Args:
        message: Human-readable; never quotes the credential.
        failure: The ``auth.failed`` reason.
        credential_type: What kind of credential was presented.
    """

    http_status = 401
    code = grpc.StatusCode.UNAUTHENTICATED

    def __init__(
        self,
        message: str,
        *,
        failure: Reason,
        credential_type: CredentialType = auth_events_pb2.CREDENTIAL_TYPE_UNSPECIFIED,
    ) -> None:
        super().__init__(message, reason=_REASONS.get(failure, "UNAUTHENTICATED"))
        self.failure = failure
        self.credential_type = credential_type


class Forbidden(AuthError):
    """403: the caller is authenticated but may not call this RPC."""

    http_status = 403
    code = grpc.StatusCode.PERMISSION_DENIED


class AuthUnavailable(AuthError):
    """503: a credential could not be checked now; the caller may retry."""

    http_status = 503
    code = grpc.StatusCode.UNAVAILABLE
