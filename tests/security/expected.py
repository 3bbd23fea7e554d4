"""What every caller must meet, by the access a method's proto declares."""

from __future__ import annotations

from plugmesh.options.v1 import options_pb2
from tests.security.credentials import Caller
from tests.security.probes import DENIED, THROUGH, UNAUTHENTICATED

__all__ = ["at_the_gateway"]


def at_the_gateway(access: int, caller: Caller) -> str:
    """What the gateway does with ``caller`` calling a method of ``access``: public
    methods pass everyone who presents no credential or a good one (a token the gateway
    refuses is refused everywhere); the rest need a token the gateway knows (forged identity
    metadata counts for nothing); admin methods need an admin; internal ones are
    refused to every outside caller, admins included."""
    if caller is Caller.DELETED:
        return UNAUTHENTICATED
    if access == options_pb2.ACCESS_INTERNAL:
        return DENIED
    if access == options_pb2.ACCESS_PUBLIC:
        return THROUGH
    if not caller.authenticated:
        return UNAUTHENTICATED
    if access == options_pb2.ACCESS_ADMIN and caller is not Caller.ADMIN:
        return DENIED
    return THROUGH
