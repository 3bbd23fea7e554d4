"""Identities travel signed; a forged or tampered one is refused."""

from __future__ import annotations

import pytest

from meshkit.errors import Unauthenticated
from meshkit.identity import (
    IDENTITY_KEY,
    SIGNATURE_KEY,
    Identity,
    PrincipalKind,
    from_metadata,
    signing_key,
    to_metadata,
)

KEY = signing_key("mesh-secret")
ALICE = Identity(PrincipalKind.USER, "alice", admin=True, email="alice@example.com")


def test_signed_identity_round_trips() -> None:
    assert KEY is not None
    assert from_metadata(to_metadata(ALICE, KEY), KEY) == ALICE


def test_no_identity_is_anonymous() -> None:
    assert from_metadata([("user-agent", "grpcurl")], KEY) is None


def test_without_a_secret_every_caller_is_anonymous() -> None:
    assert signing_key(None) is None
    assert KEY is not None
    assert from_metadata(to_metadata(ALICE, KEY), None) is None


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param(
            [(IDENTITY_KEY, '{"kind":"user","sub":"mallory","admin":true}')], id="unsigned"
        ),
        pytest.param(
            [
                (IDENTITY_KEY, '{"admin":true,"email":"","kind":"user","sub":"alice"}'),
                (SIGNATURE_KEY, "0" * 64),
            ],
            id="bad-signature",
        ),
    ],
)
def test_forged_identity_is_refused(entries: list[tuple[str, str]]) -> None:
    with pytest.raises(Unauthenticated) as refused:
        from_metadata(entries, KEY)
    assert refused.value.reason == "IDENTITY_FORGED"


def test_identity_signed_with_another_secret_is_refused() -> None:
    other = signing_key("another-mesh")
    assert other is not None
    with pytest.raises(Unauthenticated):
        from_metadata(to_metadata(ALICE, other), KEY)


def test_tampered_identity_is_refused() -> None:
    assert KEY is not None
    (_, payload), signature = to_metadata(Identity(PrincipalKind.USER, "bob", admin=False), KEY)
    tampered = payload.replace('"admin":false', '"admin":true')
    with pytest.raises(Unauthenticated):
        from_metadata([(IDENTITY_KEY, tampered), signature], KEY)
