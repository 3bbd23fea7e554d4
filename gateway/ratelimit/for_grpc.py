"""Rate limits on the gRPC ingress: a guard (:data:`gateway.ingress.Guard`) that counts
the call once the guard it wraps let it through.

A refusal ends the call with RESOURCE_EXHAUSTED, its ``google.rpc.Status``
(``ErrorInfo`` and ``RetryInfo``) in ``grpc-status-details-bin`` and the seconds to
wait in ``retry-after`` trailing metadata too, for clients that read no details.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc
from google.protobuf import descriptor

from gateway.auth.for_grpc import peer_ip
from gateway.auth.guard import Metadata, verified_caller
from gateway.ratelimit.for_http import rpc_key
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.refusal import refusal_status, subject_of
from meshkit.errors import STATUS_DETAILS_KEY
from meshkit.grpc_types import Context

__all__ = ["Guard", "LimitedGrpcGuard"]

#: Checks a call before it is proxied (gateway.ingress.Guard).
Guard = Callable[[descriptor.MethodDescriptor, Context], Awaitable[Metadata]]


class LimitedGrpcGuard:
    """Checks a call with ``guard``, then counts it; aborts the call when over a limit.

    Args:
        guard: Authenticates and authorizes (:class:`gateway.auth.GrpcGuard`).
        limiter: The limits.
    """

    def __init__(self, guard: Guard, limiter: Limiter) -> None:
        self._guard = guard
        self._limiter = limiter

    async def __call__(self, rpc: descriptor.MethodDescriptor, context: Context) -> Metadata:
        """The metadata of ``guard``; aborts the call when refused."""
        metadata = await self._guard(rpc, context)
        subject = subject_of(verified_caller(), peer_ip(context.peer()))
        if subject is None:
            return metadata
        key = rpc_key(rpc)
        verdict = await self._limiter.check(subject, key, protocol="grpc")
        if verdict.admitted:
            return metadata
        status = refusal_status(key, verdict)
        await context.abort(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            status.message,
            (
                (STATUS_DETAILS_KEY, status.SerializeToString()),
                ("retry-after", str(verdict.retry_after_seconds)),
            ),
        )
        raise AssertionError("unreachable: abort raises")  # pragma: no cover
