"""The guard on the gRPC ingress: call metadata in, identity metadata out, or an abort.

:class:`GrpcGuard` is what :class:`gateway.ingress.IngressServer` takes as ``guard``.
The bearer credential comes in the ``authorization`` metadata entry, a mesh service's
proof in ``plugmesh-registration-secret``. Refusals end the call with
UNAUTHENTICATED, PERMISSION_DENIED or UNAVAILABLE and a ``google.rpc.Status`` (one
``ErrorInfo``, domain ``gateway.plugmesh``) in ``grpc-status-details-bin``.
"""

from __future__ import annotations

from google.protobuf import any_pb2, descriptor
from google.rpc import error_details_pb2, status_pb2

from gateway.auth.errors import AuthError
from gateway.auth.guard import Guard, Metadata, Request
from meshkit.errors import STATUS_DETAILS_KEY
from meshkit.grpc_types import Context
from meshkit.registration import SECRET_METADATA_KEY

__all__ = ["ERROR_DOMAIN", "GrpcGuard", "peer_ip"]

ERROR_DOMAIN = "gateway.plugmesh"


class GrpcGuard:
    """Checks gRPC calls with ``guard``."""

    def __init__(self, guard: Guard) -> None:
        self._guard = guard

    async def __call__(self, rpc: descriptor.MethodDescriptor, context: Context) -> Metadata:
        """The identity metadata for the upstream call; aborts the call when refused."""
        entries: dict[str, str] = {}
        for key, value in context.invocation_metadata() or ():
            if isinstance(value, str) and key.lower() not in entries:
                entries[key.lower()] = value
        request = Request(
            rpc=rpc,
            authorization=entries.get("authorization"),
            service_secret=entries.get(SECRET_METADATA_KEY),
            ip_address=peer_ip(context.peer()),
            user_agent=entries.get("user-agent", ""),
            request_id=entries.get("x-request-id", ""),
        )
        try:
            return await self._guard.check(request)
        except AuthError as exc:
            info = error_details_pb2.ErrorInfo(reason=exc.reason, domain=ERROR_DOMAIN)
            detail = any_pb2.Any()
            detail.Pack(info)
            status = status_pb2.Status(
                code=exc.code.value[0], message=exc.message, details=[detail]
            )
            await context.abort(
                exc.code, exc.message, ((STATUS_DETAILS_KEY, status.SerializeToString()),)
            )
        raise AssertionError("unreachable: abort raises")  # pragma: no cover


def peer_ip(peer: str | None) -> str:
    """``ipv4:127.0.0.1:5000`` → ``127.0.0.1``; ``ipv6:[::1]:5000`` → ``::1``."""
    if not peer:
        return ""
    _, _, address = peer.partition(":")
    host, _, _ = address.rpartition(":")
    return host.strip("[]") or address
