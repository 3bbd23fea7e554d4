"""Which key verifies which JWT, with an OpenID issuer beside the static keys: the JWKS
is served in-process here (the real provider's tests are beside this one), so that keys
the provider would not publish can be tried."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.auth.errors import AuthFailed
from gateway.auth.jwks import IssuerKeys
from gateway.auth.jwts import JwtVerifier
from gateway.auth.settings import AuthSettings
from meshkit.identity import Identity, PrincipalKind
from plugmesh.events.v1 import auth_events_pb2 as events
from tests.gateway.auth.oidc.provider import forged

ISSUER = "https://idp.example"
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
AUDIENCE = "plugmesh"
SECRET = "an-hs256-secret-that-is-long-enough-for-pyjwt"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
ALICE = Identity(PrincipalKind.USER, "alice")


def public_jwk(key: Any, kid: str, **extra: str) -> dict[str, Any]:
    """The public half of ``key`` as a JWK, without ``alg`` unless ``extra`` has one."""
    public = key.public_key()
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
    return {**jwk, "kid": kid, **extra}


JWKS = [
    public_jwk(RSA_KEY, "rsa-no-alg"),
    public_jwk(RSA_KEY, "rsa-rs256", alg="RS256"),
    public_jwk(EC_KEY, "ec"),
    public_jwk(ED_KEY, "ed"),
    public_jwk(EC_KEY, "ec-for-encryption", use="enc"),
]


#: The paths the issuer was asked for, in order.
SERVED: list[str] = []


def serve(request: httpx2.Request) -> httpx2.Response:
    SERVED.append(request.url.path)
    if request.url.path == "/.well-known/openid-configuration":
        return httpx2.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
    return httpx2.Response(200, json={"keys": JWKS})


def issuer_keys(handler: Callable[[httpx2.Request], httpx2.Response]) -> IssuerKeys:
    """The keys of :data:`ISSUER` as ``handler`` serves its documents."""
    return IssuerKeys(
        ISSUER,
        algorithms=ALGORITHMS,
        refresh_seconds=3600,
        min_refresh_seconds=0.001,
        timeout_seconds=5,
        transport=httpx2.MockTransport(handler),
    )


@pytest_asyncio.fixture
async def issuer() -> AsyncIterator[IssuerKeys]:
    keys = issuer_keys(serve)
    await keys.start()
    yield keys
    await keys.close()


def signed(key: Any, algorithm: str, kid: str | None, **claims: Any) -> str:
    """A JWT of alice for the gateway; a claim given as None is left out."""
    payload = {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": time.time() + 300}
    payload = {name: value for name, value in {**payload, **claims}.items() if value is not None}
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)


def verifier(issuer: IssuerKeys, **settings: Any) -> JwtVerifier:
    return JwtVerifier(
        AuthSettings(
            oidc_issuer=ISSUER, jwt_audience=AUDIENCE, oidc_algorithms=ALGORITHMS, **settings
        ),
        issuer,
    )


@pytest.mark.parametrize(
    ("key", "algorithm", "kid"),
    [
        pytest.param(RSA_KEY, "RS256", "rsa-rs256", id="rs256"),
        pytest.param(RSA_KEY, "PS256", "rsa-no-alg", id="ps256-with-an-rsa-key-of-no-alg"),
        pytest.param(EC_KEY, "ES256", "ec", id="es256"),
        pytest.param(ED_KEY, "EdDSA", "ed", id="eddsa"),
    ],
)
async def test_a_token_is_verified_with_the_key_its_kid_names(
    issuer: IssuerKeys, key: Any, algorithm: str, kid: str
) -> None:
    assert await verifier(issuer).verify(signed(key, algorithm, kid)) == ALICE


@pytest.mark.parametrize(
    ("token", "failure"),
    [
        pytest.param(
            signed(RSA_KEY, "PS256", "rsa-rs256"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="another-algorithm-than-the-keys-alg",
        ),
        pytest.param(
            signed(EC_KEY, "ES256", "ec-for-encryption"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="a-key-for-encryption",
        ),
        pytest.param(
            signed(EC_KEY, "ES256", "rsa-rs256"),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="the-kid-of-a-key-of-another-type",
        ),
        pytest.param(
            signed(RSA_KEY, "RS256", None),
            events.AUTH_FAILURE_REASON_INVALID_SIGNATURE,
            id="no-kid-and-no-static-key",
        ),
        pytest.param(
            signed(RSA_KEY, "RS256", "rsa-rs256", aud=None),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="no-audience",
        ),
        pytest.param(
            signed(RSA_KEY, "RS256", "rsa-rs256", iss=None),
            events.AUTH_FAILURE_REASON_INVALID_CLAIMS,
            id="no-issuer",
        ),
    ],
)
async def test_a_token_its_key_does_not_allow_is_refused(
    issuer: IssuerKeys, token: str, failure: int
) -> None:
    with pytest.raises(AuthFailed) as refused:
        await verifier(issuer).verify(token)

    assert refused.value.failure == failure


@pytest.mark.parametrize(
    ("key", "algorithm"),
    [pytest.param(EC_KEY, "ES256", id="es256"), pytest.param(ED_KEY, "EdDSA", id="eddsa")],
)
async def test_a_token_without_kid_is_verified_with_the_issuers_one_key_of_its_algorithm(
    issuer: IssuerKeys, key: Any, algorithm: str
) -> None:
    await issuer.key("ec")  # the keys are fetched

    assert await verifier(issuer).verify(signed(key, algorithm, None)) == ALICE


async def test_a_token_without_kid_is_refused_when_the_issuer_has_several_keys_of_its_algorithm(
    issuer: IssuerKeys,
) -> None:
    await issuer.key("ec")

    with pytest.raises(AuthFailed) as refused:
        await verifier(issuer).verify(signed(RSA_KEY, "RS256", None))

    assert refused.value.failure == events.AUTH_FAILURE_REASON_INVALID_SIGNATURE
    assert "the OpenID issuer has 2 keys for RS256" in refused.value.message


async def test_an_issuers_key_without_kid_verifies_tokens_without_kid() -> None:
    def one_unnamed_key(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx2.Response(200, json={"issuer": ISSUER, "jwks_uri": f"{ISSUER}/jwks"})
        unnamed = {k: v for k, v in public_jwk(EC_KEY, "").items() if k != "kid"}
        return httpx2.Response(200, json={"keys": [unnamed]})

    keys = issuer_keys(one_unnamed_key)
    await keys.start()
    try:
        with pytest.raises(AuthFailed):
            await keys.key("anything")  # fetches; no key is named anything
        verified = await verifier(keys).verify(signed(EC_KEY, "ES256", None))
        with pytest.raises(AuthFailed):
            await verifier(keys).verify(signed(RSA_KEY, "RS256", None))
    finally:
        await keys.close()

    assert verified == ALICE


async def test_a_token_without_kid_is_checked_with_the_static_key_beside_the_issuer(
    issuer: IssuerKeys,
) -> None:
    both = verifier(issuer, jwt_hs256_secret=SECRET)
    claims = {"sub": "alice", "aud": AUDIENCE, "exp": time.time() + 300}
    static = jwt.encode(claims, SECRET, algorithm="HS256")

    assert await both.verify(static) == ALICE
    # With a kid, it is the issuer's: the HS256 secret is never tried for it.
    with pytest.raises(AuthFailed):
        await both.verify(
            jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "rsa-rs256"})
        )


@pytest.mark.parametrize("algorithm", ["none", "HS256", "RS512"])
async def test_an_algorithm_not_accepted_costs_no_fetch_for_its_made_up_kid(
    issuer: IssuerKeys, algorithm: str
) -> None:
    await verifier(issuer).verify(signed(EC_KEY, "ES256", "ec"))  # the keys are fetched
    SERVED.clear()
    token = forged(signed(EC_KEY, "ES256", "made-up"), alg=algorithm, secret=b"x" * 32)

    with pytest.raises(AuthFailed) as refused:
        await verifier(issuer).verify(token)

    assert refused.value.failure == events.AUTH_FAILURE_REASON_INVALID_SIGNATURE
    assert SERVED == []
