"""The guard with its edges faked: what each refusal becomes on each port, and the
machine-token cache's use of the answers' expiry."""

from __future__ import annotations

import datetime as dt
from typing import Any

import jwt
import pytest
from google.protobuf import descriptor

from gateway.auth.cache import AnswerCache
from gateway.auth.errors import AuthUnavailable
from gateway.auth.for_http import HttpGuard
from gateway.auth.guard import Guard
from gateway.auth.jwts import JwtVerifier
from gateway.auth.logins import Login
from gateway.auth.machine import MachineTokens
from gateway.auth.settings import AuthSettings
from gateway.http.errors import HttpError
from meshkit.identity import Identity, PrincipalKind, from_metadata, signing_key
from plugmesh.events.v1 import auth_events_pb2
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.registry.v1 import registry_pb2
from plugmesh.users.v1 import users_pb2

KEY = signing_key("guard-test-secret")
LIST_SERVICES: descriptor.MethodDescriptor = registry_pb2.DESCRIPTOR.services_by_name[
    "RegistryService"
].methods_by_name["ListServices"]
TOKEN = "pmk_" + "x" * 49


class FakeValidator:
    """Answers ValidateToken from a script; counts calls."""

    def __init__(self, answer: machineusers_pb2.ValidateTokenResponse | None) -> None:
        self.answer = answer
        self.calls = 0

    async def validate(self, token: str) -> machineusers_pb2.ValidateTokenResponse:
        self.calls += 1
        if self.answer is None:
            raise AuthUnavailable("down", reason="MACHINE_USERS_UNAVAILABLE")
        return self.answer


class Sink:
    def __init__(self) -> None:
        self.failures: list[auth_events_pb2.AuthFailed] = []
        self.logins: list[Login] = []

    async def failed(self, payload: auth_events_pb2.AuthFailed) -> None:
        self.failures.append(payload)

    def logged_in(self, login: Login, *, ip_address: str, user_agent: str) -> None:
        self.logins.append(login)


def valid(expire_in_seconds: float | None = None) -> machineusers_pb2.ValidateTokenResponse:
    answer = machineusers_pb2.ValidateTokenResponse(
        valid=True,
        machine_user=machineusers_pb2.MachineUser(machine_user_id="mu-1", role=users_pb2.ROLE_USER),
    )
    if expire_in_seconds is not None:
        answer.expire_time.FromDatetime(
            dt.datetime.now(dt.UTC) + dt.timedelta(seconds=expire_in_seconds)
        )
    return answer


def guard(validator: FakeValidator, sink: Sink, cache: AnswerCache[Identity]) -> Guard:
    return Guard(
        machine=MachineTokens(validator, cache),
        jwts=JwtVerifier(AuthSettings()),
        roles=None,
        signing_key=KEY,
        mesh_secret="guard-test-secret",
        events=sink,
    )


def _cache(ttl: float = 60) -> AnswerCache[Identity]:
    cache: AnswerCache[Identity] = AnswerCache(ttl_seconds=ttl)
    cache.enabled = True
    return cache


def scope(authorization: str | None) -> dict[str, Any]:
    headers = [(b"authorization", authorization.encode())] if authorization else []
    return {"headers": headers, "method": "GET", "path": "/v1/services", "client": ("10.1.2.3", 5)}


async def test_a_valid_token_becomes_a_signed_identity() -> None:
    http = HttpGuard(guard(FakeValidator(valid()), Sink(), _cache()))

    metadata = await http(LIST_SERVICES, scope(f"Bearer {TOKEN}"))

    assert from_metadata(metadata, KEY) == Identity(PrincipalKind.MACHINE, "mu-1")


async def test_an_unreachable_machine_users_service_is_503_and_no_auth_failure() -> None:
    sink = Sink()
    http = HttpGuard(guard(FakeValidator(None), sink, _cache()))

    with pytest.raises(HttpError) as refused:
        await http(LIST_SERVICES, scope(f"Bearer {TOKEN}"))

    assert refused.value.status == 503
    assert refused.value.reason == "MACHINE_USERS_UNAVAILABLE"
    assert sink.failures == []


async def test_a_401_is_reported_with_where_it_came_from() -> None:
    sink = Sink()
    answer = machineusers_pb2.ValidateTokenResponse(
        valid=False, invalid_reason=machineusers_pb2.INVALID_REASON_EXPIRED
    )
    http = HttpGuard(guard(FakeValidator(answer), sink, _cache()))

    with pytest.raises(HttpError) as refused:
        await http(LIST_SERVICES, scope(f"Bearer {TOKEN}"))

    assert (refused.value.status, refused.value.reason) == (401, "CREDENTIALS_EXPIRED")
    (failure,) = sink.failures
    assert failure.reason == auth_events_pb2.AUTH_FAILURE_REASON_EXPIRED
    assert (failure.http_method, failure.http_path, failure.ip_address) == (
        "GET",
        "/v1/services",
        "10.1.2.3",
    )
    assert TOKEN not in str(failure)


async def test_a_cached_answer_ends_when_the_token_does() -> None:
    validator = FakeValidator(valid(expire_in_seconds=0.0))
    tokens = MachineTokens(validator, _cache())

    await tokens.authenticate(TOKEN)
    await tokens.authenticate(TOKEN)

    assert validator.calls == 2, "an answer that is about to stop being true is not kept"


async def test_a_valid_answer_is_kept_for_the_ttl() -> None:
    validator = FakeValidator(valid(expire_in_seconds=3600))
    tokens = MachineTokens(validator, _cache())

    for _ in range(3):
        await tokens.authenticate(TOKEN)

    assert validator.calls == 1


async def test_a_persons_jwt_announces_their_session_and_a_bad_one_does_not() -> None:
    secret = "j" * 40
    sink = Sink()
    checked = Guard(
        machine=MachineTokens(FakeValidator(None), _cache()),
        jwts=JwtVerifier(AuthSettings(jwt_hs256_secret=secret)),
        roles=None,
        signing_key=KEY,
        mesh_secret=None,
        events=sink,
    )
    http = HttpGuard(checked)
    expires = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    good = jwt.encode({"sub": "ada", "exp": expires, "jti": "j-1"}, secret, algorithm="HS256")
    forged = jwt.encode({"sub": "eve", "exp": expires}, "x" * 40, algorithm="HS256")

    await http(LIST_SERVICES, scope(f"Bearer {good}"))
    with pytest.raises(HttpError):
        await http(LIST_SERVICES, scope(f"Bearer {forged}"))

    assert [(login.subject, login.session_id) for login in sink.logins] == [("ada", "j-1")]
