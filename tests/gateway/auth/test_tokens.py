"""Machine tokens and JWTs through the gateway: who gets in, who does not, how a deletion
or a rotation drops a cached token, and what reaches the plugins and the audit log."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest
from sqlalchemy import event

from gateway.auth.cache import digest
from meshkit.errors import error_info
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from tests.gateway.auth.mesh import CACHE_TTL_SECONDS, JWT_SECRET, Mesh, person_jwt
from tests.support.waiting import eventually, until

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

#: An RPC every authenticated caller may call (the registry's ListServices).
AUTHENTICATED_PATH = "/v1/services"


def reason(response: httpx.Response) -> str:
    """The ErrorInfo reason of an error answer."""
    details: list[dict[str, Any]] = response.json()["details"]
    return str(details[0]["reason"])


async def until_refused(auth_mesh: Mesh, token: str, *, timeout_seconds: float) -> httpx.Response:
    """Poll an authenticated route with ``token`` until it is refused; return the refusal."""

    async def refused() -> httpx.Response | None:
        response = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(token))
        return response if response.status_code == 401 else None

    return await eventually(
        refused, timeout_seconds=timeout_seconds, interval_seconds=0.01, what="the refusal"
    )


def cached(auth_mesh: Mesh, token: str) -> bool:
    """Whether the gateway holds a validated answer for ``token``."""
    return auth_mesh.gateway.auth.tokens.get(digest(token)) is not None


async def until_dropped(auth_mesh: Mesh, token: str, what: str) -> None:
    """Wait until the gateway's cache no longer holds ``token``. The wait is far shorter
    than the cache's TTL, so only an invalidation event can have dropped it."""
    await until(
        lambda: not cached(auth_mesh, token),
        timeout_seconds=CACHE_TTL_SECONDS / 3,
        what=what,
    )


@contextlib.contextmanager
def token_lookups(auth_mesh: Mesh) -> Iterator[list[str]]:
    """Every query of the machine-users plugin on its token table inside the block."""
    seen: list[str] = []
    engine = auth_mesh.machine_users.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "machine_user_tokens" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_the_admin_token_lists_users_as_the_readme_shows(auth_mesh: Mesh) -> None:
    response = await auth_mesh.http.get(
        "/v1/users", headers=auth_mesh.bearer(auth_mesh.admin_token)
    )

    assert response.status_code == 200, response.text
    assert "users" in response.json()


async def test_the_identity_reaches_the_plugin(auth_mesh: Mesh) -> None:
    admin = await auth_mesh.http.post(
        "/v1/machine-users/x:rotateToken", headers=auth_mesh.bearer(auth_mesh.admin_token), json={}
    )
    created = await auth_mesh.http.post(
        "/v1/machine-users",
        headers=auth_mesh.bearer(auth_mesh.admin_token),
        json={"name": "via-gateway"},
    )

    assert admin.status_code == 404, "the plugin authorized the admin and found nothing"
    assert created.status_code == 200, created.text
    body = created.json()
    auth_mesh.tokens.append(body["token"])
    listing = await auth_mesh.http.get(
        "/v1/machine-users", headers=auth_mesh.bearer(auth_mesh.admin_token)
    )
    admin_id = next(
        u["machineUserId"] for u in listing.json()["machineUsers"] if u["name"] == "test-admin"
    )
    assert body["machineUser"]["creatorId"] == admin_id


async def test_a_validated_token_is_served_from_the_cache(auth_mesh: Mesh) -> None:
    first = await auth_mesh.http.get(
        AUTHENTICATED_PATH, headers=auth_mesh.bearer(auth_mesh.user_token)
    )
    assert first.status_code == 200

    with token_lookups(auth_mesh) as seen:
        for _ in range(5):
            again = await auth_mesh.http.get(
                AUTHENTICATED_PATH, headers=auth_mesh.bearer(auth_mesh.user_token)
            )
            assert again.status_code == 200

    assert seen == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("Basic dXNlcjpwdw==", "MALFORMED_CREDENTIALS", id="basic-auth"),
        pytest.param("Bearer", "MALFORMED_CREDENTIALS", id="no-token"),
        pytest.param("Bearer pmk_short", "MALFORMED_CREDENTIALS", id="short-machine-token"),
        pytest.param("Bearer not.a.jwt", "MALFORMED_CREDENTIALS", id="not-a-jwt"),
    ],
)
async def test_unusable_credentials_get_401(auth_mesh: Mesh, header: str, expected: str) -> None:
    response = await auth_mesh.http.get(AUTHENTICATED_PATH, headers={"Authorization": header})

    assert response.status_code == 401
    assert reason(response) == expected
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_a_token_with_one_wrong_character_is_refused_without_a_lookup(
    auth_mesh: Mesh,
) -> None:
    token = auth_mesh.user_token
    typo = token[:20] + ("A" if token[20] != "A" else "B") + token[21:]

    with token_lookups(auth_mesh) as seen:
        response = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(typo))

    assert (response.status_code, reason(response)) == (401, "MALFORMED_CREDENTIALS")
    assert seen == []


async def test_a_deletion_drops_the_cached_token_and_the_next_request_is_refused(
    auth_mesh: Mesh,
) -> None:
    created = await auth_mesh.create_machine_user("doomed")
    token = created.token
    warm = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(token))
    assert warm.status_code == 200
    assert cached(auth_mesh, token), "validated and cached"

    machine_user_id = created.machine_user.machine_user_id
    deleted = await auth_mesh.http.delete(
        f"/v1/machine-users/{machine_user_id}", headers=auth_mesh.bearer(auth_mesh.admin_token)
    )
    assert deleted.status_code == 200
    await until_dropped(auth_mesh, token, "the deletion to drop the cached token")
    refused = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(token))

    assert (refused.status_code, reason(refused)) == (401, "UNKNOWN_TOKEN")


async def test_a_token_rotated_out_without_grace_is_dropped_from_the_cache_and_refused(
    auth_mesh: Mesh,
) -> None:
    created = await auth_mesh.create_machine_user("rotating")
    old = created.token
    assert (
        await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(old))
    ).status_code == 200
    assert cached(auth_mesh, old), "validated and cached"

    rotated = await auth_mesh.http.post(
        f"/v1/machine-users/{created.machine_user.machine_user_id}:rotateToken",
        headers=auth_mesh.bearer(auth_mesh.admin_token),
        json={},
    )
    assert rotated.status_code == 200
    new = rotated.json()["token"]
    auth_mesh.tokens.append(new)
    await until_dropped(auth_mesh, old, "the rotation to drop the cached token")
    refused = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(old))

    assert (refused.status_code, reason(refused)) == (401, "UNKNOWN_TOKEN")
    assert (
        await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(new))
    ).status_code == 200


async def test_a_token_rotated_out_with_grace_works_until_the_grace_ends(auth_mesh: Mesh) -> None:
    created = await auth_mesh.create_machine_user("graceful")
    old = created.token

    rotated = await auth_mesh.http.post(
        f"/v1/machine-users/{created.machine_user.machine_user_id}:rotateToken",
        headers=auth_mesh.bearer(auth_mesh.admin_token),
        json={"gracePeriod": "1.5s"},
    )
    assert rotated.status_code == 200
    auth_mesh.tokens.append(rotated.json()["token"])
    assert (
        await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(old))
    ).status_code == 200
    refused = await until_refused(auth_mesh, old, timeout_seconds=10.0)

    assert (refused.status_code, reason(refused)) == (401, "CREDENTIALS_EXPIRED")


async def test_an_expired_token_is_refused_though_it_was_cached(auth_mesh: Mesh) -> None:
    created = await auth_mesh.create_machine_user("ephemeral", ttl_seconds=1.5)
    token = created.token
    assert (
        await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(token))
    ).status_code == 200

    refused = await until_refused(auth_mesh, token, timeout_seconds=10.0)

    assert (refused.status_code, reason(refused)) == (401, "CREDENTIALS_EXPIRED")


async def test_the_grpc_ingress_takes_the_bearer_token_from_the_metadata(auth_mesh: Mesh) -> None:
    stub = registry_pb2_grpc.RegistryServiceStub(auth_mesh.channel)
    request = registry_pb2.ListServicesRequest()

    listed = await stub.ListServices(
        request, metadata=(("authorization", f"Bearer {auth_mesh.user_token}"),), timeout=5
    )
    with pytest.raises(grpc.aio.AioRpcError) as anonymous:
        await stub.ListServices(request, timeout=5)

    assert {s.name for s in listed.services} >= {"machine-users", "users"}
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED
    info = error_info(anonymous.value)
    assert info is not None
    assert (info.reason, info.domain) == ("AUTHENTICATION_REQUIRED", "gateway.plugmesh")


async def test_each_call_on_the_grpc_port_gets_an_access_line_naming_its_caller(
    auth_mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="plugmesh.access")
    stub = registry_pb2_grpc.RegistryServiceStub(auth_mesh.channel)
    request = registry_pb2.ListServicesRequest()
    bearer = ("authorization", f"Bearer {auth_mesh.user_token}")
    await stub.ListServices(request, metadata=(bearer, ("x-request-id", "grpc-1")), timeout=5)
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ListServices(request, timeout=5)

    lines = [record for record in caplog.records if record.name == "plugmesh.access"]
    method = "/plugmesh.registry.v1.RegistryService/ListServices"
    seen = [
        (r.kind, r.method, r.status, r.caller, r.request_id)  # type: ignore[attr-defined]
        for r in lines
    ]
    assert seen == [
        ("grpc", method, "OK", f"machine:{auth_mesh.user_machine_id}", "grpc-1"),
        ("grpc", method, "UNAUTHENTICATED", "-", ""),
    ]
    assert all(len(r.trace_id) == 32 for r in lines)  # type: ignore[attr-defined]
    assert auth_mesh.user_token not in caplog.text


# --- people --------------------------------------------------------------------------


async def test_a_person_with_a_valid_jwt_gets_in_as_themself(auth_mesh: Mesh) -> None:
    token = person_jwt("alice", email="alice@example.com")

    own = await auth_mesh.http.get("/v1/users/alice", headers=auth_mesh.bearer(token))
    listing = await auth_mesh.http.get("/v1/users", headers=auth_mesh.bearer(token))

    # Through the gateway as alice: her record, or none yet (her auth.login provisions her
    # in the background); never a refusal.
    assert own.status_code in (200, 404), own.text
    if own.status_code == 200:
        assert own.json()["user"]["userId"] == "alice"
    assert (listing.status_code, reason(listing)) == (403, "ADMIN_REQUIRED")


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(person_jwt("bob", ttl_seconds=-120), "CREDENTIALS_EXPIRED", id="expired"),
        pytest.param(
            jwt.encode(
                {"sub": "bob", "exp": time.time() + 60}, "wrong-secret-of-32-bytes-or-more!"
            ),
            "INVALID_SIGNATURE",
            id="bad-signature",
        ),
        pytest.param(
            jwt.encode({"sub": "bob", "exp": time.time() + 60}, "", algorithm="none"),
            "INVALID_SIGNATURE",
            id="alg-none",
        ),
        pytest.param(
            jwt.encode({"exp": time.time() + 600}, JWT_SECRET, algorithm="HS256"),
            "INVALID_CLAIMS",
            id="no-sub",
        ),
        pytest.param(
            jwt.encode({"sub": "bob"}, JWT_SECRET, algorithm="HS256"),
            "INVALID_CLAIMS",
            id="no-exp",
        ),
        pytest.param(
            person_jwt("bob", nbf=time.time() + 3600), "INVALID_CLAIMS", id="not-yet-valid"
        ),
    ],
)
async def test_bad_jwts_get_401_naming_why(auth_mesh: Mesh, token: str, expected: str) -> None:
    response = await auth_mesh.http.get(AUTHENTICATED_PATH, headers=auth_mesh.bearer(token))

    assert (response.status_code, reason(response)) == (401, expected)


async def test_a_person_whose_record_says_admin_is_an_admin(auth_mesh: Mesh) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    for user_id in ("carol", "dave"):  # two: the users plugin keeps a last admin
        made = await auth_mesh.http.post(
            "/v1/users", headers=admin, json={"userId": user_id, "role": "ROLE_ADMIN"}
        )
        assert made.status_code == 200, made.text
    carol = auth_mesh.bearer(person_jwt("carol", email="carol@example.com"))

    assert (await auth_mesh.http.get("/v1/users", headers=carol)).status_code == 200

    demoted = await auth_mesh.http.patch(
        "/v1/users/carol", headers=admin, json={"role": "ROLE_USER"}
    )
    assert demoted.status_code == 200, demoted.text

    async def refused() -> bool | None:
        response = await auth_mesh.http.get("/v1/users", headers=carol)
        return True if response.status_code == 403 else None

    await eventually(refused, timeout_seconds=5, what="carol's demotion to reach the gateway")


async def test_the_access_log_names_the_verified_caller_and_never_its_token(
    auth_mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="plugmesh.access")
    ok = await auth_mesh.http.get(
        AUTHENTICATED_PATH, headers=auth_mesh.bearer(auth_mesh.user_token)
    )
    assert ok.status_code == 200
    wrong = "pmk_" + "x" * 40  # not one the mesh issued
    refused = await auth_mesh.http.get(
        AUTHENTICATED_PATH, headers={"Authorization": f"Bearer {wrong}"}
    )
    assert refused.status_code == 401
    lines = [record for record in caplog.records if record.name == "plugmesh.access"]
    assert [(line.status, line.caller) for line in lines] == [  # type: ignore[attr-defined]
        (200, f"machine:{auth_mesh.user_machine_id}"),
        (401, "-"),
    ]
    assert auth_mesh.user_token not in caplog.text
    assert wrong not in caplog.text
