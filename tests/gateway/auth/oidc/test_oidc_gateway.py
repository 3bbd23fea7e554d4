"""People's JWTs from a real OpenID provider, through a whole mesh's gateway.

The gateway starts before the provider does: machine tokens work from the start and JWTs
are unavailable (503) until the issuer's keys are fetched. Then tokens the provider issues
(RS256, ES256, EdDSA) are accepted over HTTP and gRPC, a rotated key too, and expired,
wrong-audience, wrong-issuer, ``alg: none`` and HS/RS-confused tokens are refused with
their reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth import AuthSettings
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.gateway.auth.mesh import CACHE_TTL_SECONDS, Mesh, running_mesh
from tests.gateway.auth.oidc.provider import (
    AUDIENCE,
    NEEDS_PROVIDER,
    OidcProvider,
    forged,
    free_port,
    running_provider,
)
from tests.support.waiting import eventually

pytestmark = [*NEEDS_PROVIDER, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: An RPC every authenticated caller may call (the registry's ListServices).
AUTHENTICATED_PATH = "/v1/services"
#: A fetch for an unknown kid at most this often.
GAP_SECONDS = 0.5


@pytest.fixture(scope="module")
def issuer_port() -> int:
    return free_port()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def oidc_mesh(
    tmp_path_factory: pytest.TempPathFactory, issuer_port: int
) -> AsyncIterator[Mesh]:
    """A whole mesh whose gateway trusts the provider's issuer (not up yet)."""
    settings = AuthSettings(
        oidc_issuer=f"http://127.0.0.1:{issuer_port}",
        jwt_audience=AUDIENCE,
        jwt_leeway_seconds=0,
        oidc_min_refresh_seconds=GAP_SECONDS,
        cache_ttl_seconds=CACHE_TTL_SECONDS,
    )
    async with running_mesh(tmp_path_factory.mktemp("mesh"), auth=settings) as running:
        yield running
    assert running.leaks() == [], "tokens in plain text under the data dir"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def provider(
    oidc_mesh: Mesh, issuer_port: int, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[OidcProvider]:
    """The provider, started once the mesh runs, on the port of the gateway's issuer;
    yielded once the gateway has its keys (until then a JWT is 503, tested above: the
    gateway fetches again at its own pace, which a loaded machine stretches)."""
    directory = tmp_path_factory.mktemp("provider")
    async with running_provider(
        directory / "keys.json", directory / "provider.log", port=issuer_port
    ) as running:
        token = await running.token()
        oidc_mesh.tokens.append(token)

        async def keys_known() -> bool | None:
            return (await get(oidc_mesh, token)).status_code != 503 or None

        await eventually(keys_known, timeout_seconds=30, what="the gateway to fetch the keys")
        yield running


def reason(response: httpx.Response) -> str:
    details: list[dict[str, Any]] = response.json()["details"]
    return str(details[0]["reason"])


async def get(mesh: Mesh, token: str) -> httpx.Response:
    return await mesh.http.get(AUTHENTICATED_PATH, headers=mesh.bearer(token))


async def test_before_the_issuer_answers_machine_tokens_work_and_jwts_are_unavailable(
    oidc_mesh: Mesh, issuer_port: int
) -> None:
    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        {"sub": "alice", "exp": 4102444800}, signer, algorithm="RS256", headers={"kid": "rsa-1"}
    )

    machine = await get(oidc_mesh, oidc_mesh.admin_token)
    person = await get(oidc_mesh, token)

    assert machine.status_code == 200, machine.text
    assert (person.status_code, reason(person)) == (503, "ISSUER_KEYS_UNAVAILABLE")
    assert f"http://127.0.0.1:{issuer_port}" in person.json()["message"]


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
async def test_tokens_the_provider_issues_are_accepted(
    oidc_mesh: Mesh, provider: OidcProvider, alg: str
) -> None:
    token = await provider.token(alg=alg)

    response = await get(oidc_mesh, token)

    assert jwt.get_unverified_header(token)["alg"] == alg
    assert response.status_code == 200, response.text


async def test_a_provider_token_is_accepted_on_the_grpc_port(
    oidc_mesh: Mesh, provider: OidcProvider
) -> None:
    token = await provider.token()
    oidc_mesh.tokens.append(token)
    stub = registry_pb2_grpc.RegistryServiceStub(oidc_mesh.channel)

    listed = await stub.ListServices(
        registry_pb2.ListServicesRequest(),
        metadata=(("authorization", f"Bearer {token}"),),
        timeout=10,
    )

    assert listed.services


async def test_the_person_is_the_tokens_subject_and_is_provisioned(
    oidc_mesh: Mesh, provider: OidcProvider
) -> None:
    headers = oidc_mesh.bearer(await provider.token(alg="ES256"))

    async def provisioned() -> dict[str, Any] | None:
        own = await oidc_mesh.http.get("/v1/users/alice", headers=headers)
        assert own.status_code in (200, 404), own.text
        return own.json()["user"] if own.status_code == 200 else None

    user = await eventually(provisioned, timeout_seconds=20, what="alice provisioned")
    listing = await oidc_mesh.http.get("/v1/users", headers=headers)

    # Her auth.login provisioned her with the email of the token's claims; she is no admin.
    assert (user["userId"], user["email"]) == ("alice", "alice@example.com")
    assert (listing.status_code, reason(listing)) == (403, "ADMIN_REQUIRED")


async def test_a_token_signed_with_a_rotated_key_is_accepted(
    oidc_mesh: Mesh, provider: OidcProvider
) -> None:
    kids = await provider.rotate()
    await asyncio.sleep(GAP_SECONDS)  # since the gateway's last fetch, at the most
    tokens = {alg: await provider.token(alg=alg) for alg in ("RS256", "ES256", "EdDSA")}

    answers = {alg: (await get(oidc_mesh, token)).status_code for alg, token in tokens.items()}

    assert {jwt.get_unverified_header(token)["kid"] for token in tokens.values()} == {
        "rsa-2",
        "ec-2",
        "ed-2",
    }
    assert {"rsa-2", "rsa-1"} <= set(kids)
    assert answers == {"RS256": 200, "ES256": 200, "EdDSA": 200}


async def _expired(provider: OidcProvider, _: Path) -> str:
    token = await provider.token(ttl_seconds=1)
    await asyncio.sleep(2.1)
    return token


async def _for_another_audience(provider: OidcProvider, _: Path) -> str:
    return await provider.token(audience="another-application")


async def _of_another_issuer(provider: OidcProvider, directory: Path) -> str:
    # The same keys (so the same kids and a good signature), another issuer.
    async with running_provider(provider.keys, directory / "other.log") as other:
        assert other.issuer != provider.issuer
        return await other.token()


async def _unsigned(provider: OidcProvider, _: Path) -> str:
    return forged(await provider.token(), alg="none")


async def _hmac_with_the_public_key(provider: OidcProvider, _: Path) -> str:
    token = await provider.token()
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in await provider.jwks() if key["kid"] == kid)
    public = jwt.PyJWK(jwk).key
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return forged(token, alg="HS256", secret=pem)


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(_expired, "CREDENTIALS_EXPIRED", id="expired"),
        pytest.param(_for_another_audience, "INVALID_CLAIMS", id="wrong-audience"),
        pytest.param(_of_another_issuer, "INVALID_CLAIMS", id="wrong-issuer"),
        pytest.param(_unsigned, "INVALID_SIGNATURE", id="alg-none"),
        pytest.param(_hmac_with_the_public_key, "INVALID_SIGNATURE", id="hs-rs-confusion"),
    ],
)
async def test_bad_tokens_are_refused_naming_why(
    oidc_mesh: Mesh,
    provider: OidcProvider,
    tmp_path: Path,
    make: Callable[[OidcProvider, Path], Awaitable[str]],
    expected: str,
) -> None:
    token = await make(provider, tmp_path)

    response = await get(oidc_mesh, token)

    assert (response.status_code, reason(response)) == (401, expected), response.text
