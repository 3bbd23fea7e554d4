"""The keys of an OpenID issuer (gateway.auth.jwks) against a real OpenID provider:
fetched with the algorithms their types allow, fetched again for a new kid at most once
per gap and by one shared fetch, and unavailable (not unknown) while the issuer is down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.auth.errors import AuthFailed, AuthUnavailable
from gateway.auth.jwks import IssuerKeys
from meshkit.registration import Backoff
from plugmesh.events.v1 import auth_events_pb2 as events
from tests.gateway.auth.oidc.provider import (
    NEEDS_PROVIDER,
    OidcProvider,
    free_port,
    running_provider,
)
from tests.support.waiting import eventually

pytestmark = [*NEEDS_PROVIDER, pytest.mark.timeout(60)]

#: Long enough that what a test does within it (a burst of lookups, a rotation that makes
#: an RSA key) fits in it on a loaded machine.
GAP_SECONDS = 3.0
FAST = Backoff(initial_seconds=0.1, maximum_seconds=0.2)


@pytest_asyncio.fixture
async def provider(tmp_path: Path) -> AsyncIterator[OidcProvider]:
    async with running_provider(tmp_path / "keys.json", tmp_path / "provider.log") as running:
        yield running


def issuer_keys(issuer: str, *, gap_seconds: float = GAP_SECONDS) -> IssuerKeys:
    return IssuerKeys(
        issuer,
        algorithms=("RS256", "ES256", "EdDSA"),
        refresh_seconds=3600,
        min_refresh_seconds=gap_seconds,
        timeout_seconds=5,
        backoff=FAST,
    )


async def fetched(keys: IssuerKeys) -> None:
    async def ready() -> bool | None:
        return True if keys.ready else None

    await eventually(ready, timeout_seconds=10, what="the issuer's keys fetched")


async def started(keys: IssuerKeys) -> IssuerKeys:
    await keys.start()
    await fetched(keys)
    return keys


async def test_each_key_is_used_only_with_the_algorithm_of_its_type(
    provider: OidcProvider,
) -> None:
    keys = await started(issuer_keys(provider.issuer))
    try:
        found = {kid: (await keys.key(kid)).algorithms for kid in ("rsa-1", "ec-1", "ed-1")}
    finally:
        await keys.close()

    assert found == {"rsa-1": {"RS256"}, "ec-1": {"ES256"}, "ed-1": {"EdDSA"}}


async def test_a_key_of_an_algorithm_not_allowed_is_not_kept(provider: OidcProvider) -> None:
    keys = IssuerKeys(
        provider.issuer,
        algorithms=("ES256",),
        refresh_seconds=3600,
        min_refresh_seconds=3600,
        timeout_seconds=5,
    )
    await started(keys)
    try:
        assert (await keys.key("ec-1")).algorithms == {"ES256"}
        with pytest.raises(AuthFailed):
            await keys.key("rsa-1")
    finally:
        await keys.close()


async def test_a_new_kid_is_fetched_once_the_gap_has_passed_and_refused_before(
    provider: OidcProvider,
) -> None:
    keys = await started(issuer_keys(provider.issuer))
    try:
        await provider.rotate()
        # Within the gap after the first fetch: not fetched again, refused.
        with pytest.raises(AuthFailed) as refused:
            await keys.key("rsa-2")
        await asyncio.sleep(GAP_SECONDS)
        rotated = await keys.key("rsa-2")
    finally:
        await keys.close()

    assert refused.value.failure == events.AUTH_FAILURE_REASON_INVALID_SIGNATURE
    assert "rsa-2" in refused.value.message
    assert rotated.algorithms == {"RS256"}


async def test_unknown_kids_cost_one_shared_fetch_per_gap(provider: OidcProvider) -> None:
    keys = await started(issuer_keys(provider.issuer))
    try:
        await asyncio.sleep(GAP_SECONDS)
        before = await provider.jwks_fetches()
        at_once = await asyncio.gather(
            *(keys.key(f"made-up-{n}") for n in range(20)), return_exceptions=True
        )
        one_by_one = await asyncio.gather(
            *(keys.key(f"made-up-again-{n}") for n in range(20)), return_exceptions=True
        )
        after = await provider.jwks_fetches()
    finally:
        await keys.close()

    assert all(isinstance(answer, AuthFailed) for answer in (*at_once, *one_by_one))
    assert after - before == 1


async def test_an_unreachable_issuer_leaves_jwts_unavailable_until_it_answers(
    tmp_path: Path,
) -> None:
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    keys = issuer_keys(issuer, gap_seconds=0.2)
    await keys.start()
    try:
        with pytest.raises(AuthUnavailable) as unavailable:
            await keys.key("rsa-1")
        async with running_provider(
            tmp_path / "keys.json", tmp_path / "provider.log", port=port
        ) as provider:
            assert provider.issuer == issuer
            await fetched(keys)
            key = await keys.key("rsa-1")
    finally:
        await keys.close()

    assert unavailable.value.reason == "ISSUER_KEYS_UNAVAILABLE"
    assert issuer in unavailable.value.message
    assert key.algorithms == {"RS256"}


async def test_while_the_issuer_is_down_its_cached_keys_still_verify(tmp_path: Path) -> None:
    async with running_provider(tmp_path / "keys.json", tmp_path / "provider.log") as provider:
        keys = await started(issuer_keys(provider.issuer, gap_seconds=0.2))
    try:
        await asyncio.sleep(0.3)
        with pytest.raises(AuthUnavailable) as unavailable:
            await keys.key("rsa-2")  # maybe rotated in: cannot tell now
        cached = await keys.key("rsa-1")
    finally:
        await keys.close()

    assert "could not be fetched again" in unavailable.value.message
    assert cached.algorithms == {"RS256"}


async def test_a_discovery_document_of_another_issuer_is_not_trusted(
    provider: OidcProvider,
) -> None:
    # The provider's issuer has no trailing slash: this one is not it.
    keys = issuer_keys(provider.issuer + "/", gap_seconds=0.2)
    await keys.start()
    try:
        await asyncio.sleep(0.5)
        with pytest.raises(AuthUnavailable) as unavailable:
            await keys.key("rsa-1")
    finally:
        await keys.close()

    assert f"names issuer '{provider.issuer}'" in unavailable.value.message
