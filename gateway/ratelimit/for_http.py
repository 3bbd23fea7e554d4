"""Rate limits on the HTTP side: a :class:`~gateway.http.ports.RequestGuard` that counts
the call once the guard it wraps let it through.

A refusal is ``429 Too Many Requests`` with ``Retry-After`` (whole seconds) and the
gateway's error body (:mod:`~gateway.ratelimit.refusal`). The key is the route's RPC
(``/<package.Service>/<Method>``): an RPC is one key whichever of its HTTP bindings, or
the gRPC port, calls it, so a caller does not double its share by changing doors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from google.protobuf import descriptor
from google.rpc import code_pb2, status_pb2

from gateway.auth.guard import Metadata, verified_caller
from gateway.http.errors import HttpError
from gateway.http.ports import RequestGuard
from gateway.ratelimit.limiter import Limiter, Verdict
from gateway.ratelimit.refusal import REASON, message_of, metadata_of, refusal_status, subject_of

__all__ = ["LimitedHttpGuard", "TooManyRequests", "rpc_key"]


def rpc_key(rpc: descriptor.MethodDescriptor) -> str:
    """The key of an RPC: ``/<package.Service>/<Method>``, as gRPC names it."""
    return f"/{rpc.containing_service.full_name}/{rpc.name}"


class TooManyRequests(HttpError):
    """429 RESOURCE_EXHAUSTED: the caller is over a rate limit."""

    status = 429
    code = code_pb2.RESOURCE_EXHAUSTED

    def __init__(self, key: str, verdict: Verdict) -> None:
        super().__init__(
            message_of(key, verdict),
            reason=REASON,
            metadata=metadata_of(key, verdict),
            headers={"Retry-After": str(verdict.retry_after_seconds)},
        )
        self._status = refusal_status(key, verdict)

    def to_status(self) -> status_pb2.Status:
        """The status with its ``ErrorInfo`` and ``RetryInfo``."""
        return self._status


class LimitedHttpGuard:
    """Checks a request with ``guard``, then counts it.

    Args:
        guard: Authenticates and authorizes (:class:`gateway.auth.HttpGuard`).
        limiter: The limits.
    """

    def __init__(self, guard: RequestGuard, limiter: Limiter) -> None:
        self._guard = guard
        self._limiter = limiter

    async def __call__(
        self, rpc: descriptor.MethodDescriptor, scope: Mapping[str, Any]
    ) -> Metadata:
        """The metadata of ``guard``.

        Raises:
            HttpError: ``guard`` refused the request, or :class:`TooManyRequests`.
        """
        metadata = await self._guard(rpc, scope)
        client = scope.get("client")
        subject = subject_of(verified_caller(), str(client[0]) if client else "")
        if subject is None:
            return metadata
        key = rpc_key(rpc)
        verdict = await self._limiter.check(subject, key, protocol="http")
        if not verdict.admitted:
            raise TooManyRequests(key, verdict)
        return metadata
