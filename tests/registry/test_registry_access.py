"""Who may call the registry: every RPC declares an access the server knows, and each
access level admits and refuses the callers of registry/access.py's table, before the
servicer runs (an empty request is never looked at when the caller is refused)."""

from __future__ import annotations

import hmac
import json
from collections.abc import Sequence

import grpc
import pytest

from meshkit.access import KNOWN_ACCESS, Access, Metadata, declared_access
from meshkit.errors import MeshError, error_info
from meshkit.identity import (
    IDENTITY_KEY,
    SIGNATURE_KEY,
    Identity,
    PrincipalKind,
    signing_key,
    to_metadata,
)
from meshkit.registration import SECRET_METADATA_KEY
from plugmesh.options.v1 import options_pb2
from plugmesh.registry.v1 import registry_pb2
from registry.access import RegistryAccess
from registry.app import RegistryServer
from registry.service import RegistryServicer
from tests.support.calls import call_empty
from tests.support.registry import StartRegistry

SECRET = "s3cret"
METHOD = "plugmesh.test.v1.TestService.Call"
_KEY = signing_key(SECRET)
assert _KEY is not None
_BAD_IDENTITY = json.dumps({"kind": "nobody"})

#: Callers by what they send.
CALLERS: dict[str, tuple[tuple[str, str], ...]] = {
    "anonymous": (),
    "secret": ((SECRET_METADATA_KEY, SECRET),),
    "wrong-secret": ((SECRET_METADATA_KEY, "guess"),),
    "empty-secret": ((SECRET_METADATA_KEY, ""),),
    "user": to_metadata(Identity(PrincipalKind.USER, "u-1"), _KEY),
    "admin": to_metadata(Identity(PrincipalKind.USER, "u-2", admin=True), _KEY),
    "service": to_metadata(Identity(PrincipalKind.SERVICE, "gateway"), _KEY),
    "forged": to_metadata(Identity(PrincipalKind.USER, "u-1", admin=True), b"not the key"),
    "malformed": (
        (IDENTITY_KEY, _BAD_IDENTITY),
        (SIGNATURE_KEY, hmac.new(_KEY, _BAD_IDENTITY.encode(), "sha256").hexdigest()),
    ),
    "user-wrong-secret": (
        *to_metadata(Identity(PrincipalKind.USER, "u-1"), _KEY),
        (SECRET_METADATA_KEY, "guess"),
    ),
}

MISSING = ("UNAUTHENTICATED", "REGISTRATION_SECRET_MISSING")
INVALID = ("UNAUTHENTICATED", "REGISTRATION_SECRET_INVALID")
ANONYMOUS = ("UNAUTHENTICATED", "AUTHENTICATION_REQUIRED")
FORGED = ("UNAUTHENTICATED", "IDENTITY_FORGED")
MALFORMED = ("UNAUTHENTICATED", "IDENTITY_MALFORMED")
NOT_ADMIN = ("PERMISSION_DENIED", "ADMIN_REQUIRED")
OK = None

#: What a caller sending the secret gets at every access level: the secret is checked
#: whatever else comes with it.
_SENDING_THE_SECRET: dict[str, tuple[str, str] | None] = {
    "secret": OK,
    "wrong-secret": INVALID,
    "empty-secret": MISSING,
    "user-wrong-secret": INVALID,
}

#: The refusal each caller gets, by access level (None: admitted).
REFUSALS: dict[Access, dict[str, tuple[str, str] | None]] = {
    options_pb2.ACCESS_INTERNAL: {
        **_SENDING_THE_SECRET,
        "anonymous": MISSING,
        "user": MISSING,
        "admin": MISSING,
        "service": MISSING,
        "forged": MISSING,
        "malformed": MISSING,
    },
    options_pb2.ACCESS_AUTHENTICATED: {
        **_SENDING_THE_SECRET,
        "anonymous": ANONYMOUS,
        "user": OK,
        "admin": OK,
        "service": OK,
        "forged": FORGED,
        "malformed": MALFORMED,
    },
    options_pb2.ACCESS_ADMIN: {
        **_SENDING_THE_SECRET,
        "anonymous": ANONYMOUS,
        "user": NOT_ADMIN,
        "admin": OK,
        "service": OK,
        "forged": FORGED,
        "malformed": MALFORMED,
    },
    options_pb2.ACCESS_PUBLIC: {
        **_SENDING_THE_SECRET,
        "anonymous": OK,
        "user": OK,
        "admin": OK,
        "service": OK,
        "forged": FORGED,
        "malformed": MALFORMED,
    },
}

#: What a refused caller reads, by reason: the registry's words before the interceptor.
MESSAGES = {
    "REGISTRATION_SECRET_MISSING": (
        "the registration secret is missing from the 'plugmesh-registration-secret' metadata"
    ),
    "REGISTRATION_SECRET_INVALID": "the registration secret is wrong",
    "AUTHENTICATION_REQUIRED": (
        "the registry answers mesh members (the registration secret) and callers"
        " the gateway signed for"
    ),
    "IDENTITY_FORGED": "the caller's identity is not signed by the gateway",
    "IDENTITY_MALFORMED": "the caller's identity is malformed",
    "ADMIN_REQUIRED": f"{METHOD} is for admins only",
}


def _admitted(
    policy: RegistryAccess, access: Access, metadata: Metadata
) -> tuple[str, str, str] | None:
    """None when ``policy`` admits the call, else the refusal's code, reason and message."""
    try:
        policy.admit(access, METHOD, metadata)
    except MeshError as refusal:
        return refusal.code.name, refusal.reason, refusal.message
    return None


_NAMES = {
    options_pb2.ACCESS_PUBLIC: "public",
    options_pb2.ACCESS_AUTHENTICATED: "authenticated",
    options_pb2.ACCESS_ADMIN: "admin",
    options_pb2.ACCESS_INTERNAL: "internal",
}
_REGISTRY = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]


def test_the_table_covers_every_access_level_the_interceptor_knows() -> None:
    assert set(REFUSALS) == KNOWN_ACCESS
    assert all(set(row) == set(CALLERS) for row in REFUSALS.values())


@pytest.mark.parametrize("method", [m.name for m in _REGISTRY.methods])
def test_every_registry_rpc_declares_an_access_the_interceptor_knows(method: str) -> None:
    access = declared_access(_REGISTRY.methods_by_name[method])

    assert access in KNOWN_ACCESS
    assert callable(getattr(RegistryServicer, method))


@pytest.mark.parametrize(
    ("access", "caller"),
    [(access, caller) for access, row in REFUSALS.items() for caller in row],
    ids=[f"{_NAMES[access]}-{caller}" for access, row in REFUSALS.items() for caller in row],
)
def test_each_access_level_admits_or_refuses_each_caller(access: Access, caller: str) -> None:
    expected = REFUSALS[access][caller]

    got = _admitted(RegistryAccess(SECRET), access, CALLERS[caller])

    assert got == (None if expected is OK else (*expected, MESSAGES[expected[1]]))


@pytest.mark.parametrize("access", sorted(KNOWN_ACCESS), ids=lambda a: _NAMES[a])
def test_without_a_secret_every_caller_is_admitted(access: Access) -> None:
    policy = RegistryAccess(None)

    assert [_admitted(policy, access, metadata) for metadata in CALLERS.values()] == [None] * len(
        CALLERS
    )


async def _refusal(
    registry: RegistryServer, method: str, metadata: Sequence[tuple[str, str]]
) -> tuple[str, str, str, str] | None:
    """None when the call of ``method`` (an empty request) was admitted and served or
    found invalid, else the refusal's code, reason, domain and message."""
    rpc = _REGISTRY.methods_by_name[method]
    async with grpc.aio.insecure_channel(registry.address) as channel:
        error = await call_empty(
            channel,
            f"/{_REGISTRY.full_name}/{method}",
            server_streaming=rpc.server_streaming,
            metadata=metadata,
        )
    if error is None or error.code() == grpc.StatusCode.INVALID_ARGUMENT:
        return None
    info = error_info(error)
    assert info is not None
    return error.code().name, info.reason, info.domain, error.details() or ""


@pytest.mark.parametrize("method", [m.name for m in _REGISTRY.methods])
async def test_the_registry_refuses_each_rpcs_callers_by_its_declared_access(
    start_registry: StartRegistry, method: str
) -> None:
    registry = await start_registry(registration_secret=SECRET)
    access = declared_access(_REGISTRY.methods_by_name[method])
    assert access is not None
    row = REFUSALS[access]
    wrong: list[str] = []

    for caller, expected in row.items():
        got = await _refusal(registry, method, CALLERS[caller])
        want = None if expected is OK else (*expected, "registry.plugmesh", MESSAGES[expected[1]])
        if got != want:
            wrong.append(f"{caller}: {got}, not {want}")

    assert wrong == []
