"""What every door says of a refused call, and who a call is counted for.

A refusal is a ``google.rpc.Status`` RESOURCE_EXHAUSTED with one ``ErrorInfo`` (reason
``RATE_LIMITED``, domain ``gateway.plugmesh``; metadata: the key, the limit, the seconds
to wait) and a ``RetryInfo`` (AIP-193: how long to wait before trying again).
"""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.ratelimit.limiter import Subject, Verdict
from meshkit.identity import Identity, PrincipalKind

__all__ = ["ERROR_DOMAIN", "REASON", "message_of", "metadata_of", "refusal_status", "subject_of"]

ERROR_DOMAIN = "gateway.plugmesh"
REASON = "RATE_LIMITED"


def subject_of(identity: Identity | None, address: str) -> Subject | None:
    """Who a call of an RPC is counted for: its verified caller, or its peer address when
    it is anonymous (a public RPC); None for a mesh service, never limited."""
    if identity is None:
        return Subject(f"address:{address}")
    if identity.kind is PrincipalKind.SERVICE:
        return None
    return Subject(f"{identity.kind.value}:{identity.subject}", admin=identity.admin)


def message_of(key: str, verdict: Verdict) -> str:
    """For people: which limit, and when to try again."""
    return (
        f"rate limit of {key} exceeded ({verdict.limit} per caller);"
        f" retry in {verdict.retry_after_seconds} s"
    )


def metadata_of(key: str, verdict: Verdict) -> dict[str, str]:
    """The ``ErrorInfo`` metadata: the key, the limit, the seconds to wait."""
    return {
        "key": key,
        "limit": str(verdict.limit),
        "retry_after_seconds": str(verdict.retry_after_seconds),
    }


def refusal_status(key: str, verdict: Verdict) -> status_pb2.Status:
    """The ``google.rpc.Status`` of a refused call of ``key``."""
    info = error_details_pb2.ErrorInfo(
        reason=REASON, domain=ERROR_DOMAIN, metadata=metadata_of(key, verdict)
    )
    retry = error_details_pb2.RetryInfo(
        retry_delay=duration_pb2.Duration(seconds=verdict.retry_after_seconds)
    )
    details = []
    for detail in (info, retry):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    return status_pb2.Status(
        code=code_pb2.RESOURCE_EXHAUSTED, message=message_of(key, verdict), details=details
    )
