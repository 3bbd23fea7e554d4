"""JWT verification: HS256 and RS256 keys, pinned algorithms, required claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.errors import AuthFailed
from gateway.auth.jwts import JwtVerifier
from gateway.auth.settings import AuthSettings
from meshkit.config import ConfigError
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2 as events

SECRET = "an-hs256-secret-that-is-long-enough-for-pyjwt"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = (
    RSA_KEY.public_key()
    .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    .decode()
)


def claims(**extra: Any) -> dict[str, Any]:
    """Claims of a valid token for ``alice``. Made when the module is collected, so they
    must outlive a whole run of the suite on a loaded machine."""
    return {"sub": "alice", "email": "alice@example.com", "exp": time.time() + 86400, **extra}


def hs256(**extra: Any) -> str:
    return jwt.encode(claims(**extra), SECRET, algorithm="HS256")


def rs256(**extra: Any) -> str:
    return jwt.encode(claims(**extra), RSA_KEY, algorithm="RS256")


ALICE = Identity(PrincipalKind.USER, "alice", email="alice@example.com")
BOTH = AuthSettings(jwt_hs256_secret=SECRET, jwt_rs256_public_key=RSA_PUBLIC_PEM)


@pytest.mark.parametrize("make", [hs256, rs256], ids=["hs256", "rs256"])
async def test_a_valid_jwt_is_the_person_of_its_sub_claim(make: Callable[..., str]) -> None:
    assert await JwtVerifier(BOTH).verify(make()) == ALICE


async def test_an_rs256_key_may_come_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(RSA_PUBLIC_PEM)
    settings = AuthSettings.from_env({"PLUGMESH_GATEWAY_JWT_RS256_PUBLIC_KEY": str(path)})

    assert await JwtVerifier(settings).verify(rs256()) == ALICE


def _forged_hs256_with_the_public_key() -> str:
    # The classic algorithm confusion: HS256 "signed" with the RSA public key as secret.
    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing_input = f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims())}"
    mac = hmac.new(RSA_PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


@pytest.mark.parametrize(
    ("settings", "token", "failure"),
    [
        pytest.param(
            BOTH,
            hs256(exp=time.time() - 120),
            events.AUTH_FAILURE_REASON_EXPIRED,
            id="expired",
        ),
        pytest.param(
            BOTH,
            jwt.encode(claims(), SECRET + "x", algorithm="HS256"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="wrong-secret",
        ),
        pytest.param(
            AuthSettings(jwt_rs256_public_key=RSA_PUBLIC_PEM),
            _forged_hs256_with_the_public_key(),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="alg-confusion",
        ),
        pytest.param(
            BOTH,
            jwt.encode(claims(), "", algorithm="none"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="alg-none",
        ),
        pytest.param(
            BOTH,
            jwt.encode(claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="other-algorithm",
        ),
        pytest.param(
            AuthSettings(jwt_hs256_secret=SECRET, jwt_issuer="https://idp.example"),
            hs256(iss="https://evil.example"),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="wrong-issuer",
        ),
        pytest.param(
            AuthSettings(jwt_hs256_secret=SECRET, jwt_audience="plugmesh"),
            hs256(aud="someone-else"),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="wrong-audience",
        ),
        pytest.param(
            BOTH,
            hs256(nbf=time.time() + 3600),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="not-yet-valid",
        ),
        pytest.param(
            BOTH,
            jwt.encode({"exp": time.time() + 60}, SECRET, algorithm="HS256"),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="no-sub",
        ),
        pytest.param(
            BOTH,
            jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="no-exp",
        ),
        pytest.param(
            BOTH,
            hs256(sub=""),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="empty-sub",
        ),
        pytest.param(BOTH, "garbage", events.AUTH_FAILURE_REASON_MALFORMED, id="not-a-jwt"),
        pytest.param(
            AuthSettings(),
            hs256(),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="no-key-configured",
        ),
    ],
)
async def test_bad_jwts_are_refused_with_their_reason(
    settings: AuthSettings, token: str, failure: int
) -> None:
    with pytest.raises(AuthFailed) as refused:
        await JwtVerifier(settings).verify(token)

    assert refused.value.failure == failure
    assert refused.value.credential_type == events.CREDENTIAL_TYPE_JWT
    assert token not in refused.value.message


async def test_issuer_and_audience_are_accepted_when_they_match() -> None:
    settings = AuthSettings(
        jwt_hs256_secret=SECRET, jwt_issuer="https://idp.example", jwt_audience="plugmesh"
    )

    verified = await JwtVerifier(settings).verify(hs256(iss="https://idp.example", aud="plugmesh"))

    assert verified == ALICE


def test_a_key_that_is_not_an_rsa_public_key_is_a_config_error() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )

    with pytest.raises(ConfigError, match="RSA"):
        JwtVerifier(AuthSettings(jwt_rs256_public_key=ec_pem))
    with pytest.raises(ConfigError, match="PEM"):
        JwtVerifier(AuthSettings(jwt_rs256_public_key="-----BEGIN PUBLIC KEY-----\nnope\n"))
