"""Bad input fails with the right code and names what was wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio

from plugmesh.users.v1 import users_pb2
from tests.services.users.support import Api, failure, permissions

pytestmark = pytest.mark.asyncio(loop_scope="module")

ALLOW, DENY = users_pb2.EFFECT_ALLOW, users_pb2.EFFECT_DENY
INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
EXISTS = grpc.StatusCode.ALREADY_EXISTS
ABORTED = grpc.StatusCode.ABORTED


@dataclass(frozen=True)
class Seeded:
    """The module's users: ``exists`` (changed once since ``stale_etag``) and ``other``."""

    api: Api
    stale_etag: str


@dataclass(frozen=True)
class Case:
    call: Callable[[Seeded], Awaitable[object]]
    code: grpc.StatusCode
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)
    mentions: str = ""


def _create(**fields: object) -> Callable[[Seeded], Awaitable[object]]:
    return lambda s: s.api.create(**fields)  # type: ignore[arg-type]  # test kwargs


def _update(paths: list[str] | None, **fields: object) -> Callable[[Seeded], Awaitable[object]]:
    return lambda s: s.api.update(users_pb2.User(**fields), paths)  # type: ignore[arg-type]


def _permissions(
    user_id: str, message: users_pb2.Permissions | None, etag: str = ""
) -> Callable[[Seeded], Awaitable[object]]:
    request = users_pb2.UpdateUserPermissionsRequest(user_id=user_id, etag=etag)
    if message is not None:
        request.permissions.CopyFrom(message)
    return lambda s: s.api.stub.UpdateUserPermissions(request, metadata=s.api.metadata_admin())


CASES: dict[str, Case] = {
    # Unknown users.
    "get-unknown": Case(
        lambda s: s.api.get("ghost"), NOT_FOUND, "USER_NOT_FOUND", {"user_id": "ghost"}
    ),
    "update-unknown": Case(
        _update(["display_name"], user_id="ghost", display_name="x"), NOT_FOUND, "USER_NOT_FOUND"
    ),
    "delete-unknown": Case(lambda s: s.api.delete("ghost"), NOT_FOUND, "USER_NOT_FOUND"),
    "permissions-unknown": Case(
        _permissions("ghost", users_pb2.Permissions()), NOT_FOUND, "USER_NOT_FOUND"
    ),
    "check-unknown": Case(lambda s: s.api.check("ghost", "a", "b"), NOT_FOUND, "USER_NOT_FOUND"),
    # update_mask.
    "mask-unknown-field": Case(
        _update(["password"], user_id="exists"),
        INVALID,
        "INVALID_FIELD",
        {"field": "update_mask", "path": "password"},
        "'password'",
    ),
    "mask-sub-field": Case(
        _update(["permissions.rules"], user_id="exists"),
        INVALID,
        "INVALID_FIELD",
        {"field": "update_mask", "path": "permissions.rules"},
    ),
    "mask-camel-case": Case(
        _update(["displayName"], user_id="exists"),
        INVALID,
        "INVALID_FIELD",
        {"path": "displayName"},
    ),
    # Malformed patterns name the rule and the pattern.
    "create-bad-pattern": Case(
        _create(user_id="p1", permissions=permissions((ALLOW, "*"), (DENY, "github/a/b"))),
        INVALID,
        "INVALID_FIELD",
        {"field": "user.permissions.rules[1].pattern", "pattern": "github/a/b", "index": "1"},
        "'github/a/b'",
    ),
    "permissions-empty-pattern": Case(
        _permissions("exists", permissions((ALLOW, ""))),
        INVALID,
        "INVALID_FIELD",
        {"field": "permissions.rules[0].pattern", "pattern": ""},
    ),
    "permissions-bad-character": Case(
        _permissions("exists", permissions((ALLOW, "git hub/*"))),
        INVALID,
        "INVALID_FIELD",
        {"field": "permissions.rules[0].pattern", "pattern": "git hub/*"},
        "'git hub/*'",
    ),
    "permissions-empty-tool": Case(
        _permissions("exists", permissions((ALLOW, "a/*"), (ALLOW, "b/*"), (DENY, "github/"))),
        INVALID,
        "INVALID_FIELD",
        {"field": "permissions.rules[2].pattern", "index": "2"},
    ),
    "permissions-no-effect": Case(
        _permissions("exists", permissions((users_pb2.EFFECT_UNSPECIFIED, "*"))),
        INVALID,
        "INVALID_FIELD",
        {"field": "permissions.rules[0].effect"},
    ),
    "permissions-missing": Case(
        _permissions("exists", None), INVALID, "INVALID_FIELD", {"field": "permissions"}
    ),
    "update-bad-pattern": Case(
        _update(["permissions"], user_id="exists", permissions=permissions((ALLOW, "//"))),
        INVALID,
        "INVALID_FIELD",
        {"field": "user.permissions.rules[0].pattern", "pattern": "//"},
    ),
    # Other fields.
    "create-without-user": Case(
        lambda s: s.api.stub.CreateUser(
            users_pb2.CreateUserRequest(), metadata=s.api.metadata_admin()
        ),
        INVALID,
        "INVALID_FIELD",
        {"field": "user"},
    ),
    "create-slash-in-id": Case(
        _create(user_id="a/b"), INVALID, "INVALID_FIELD", {"field": "user.user_id"}
    ),
    "create-long-id": Case(
        _create(user_id="u" * 129), INVALID, "INVALID_FIELD", {"field": "user.user_id"}
    ),
    "create-bad-email": Case(
        _create(user_id="p2", email="not-an-email"),
        INVALID,
        "INVALID_FIELD",
        {"field": "user.email"},
    ),
    "create-unknown-role": Case(
        _create(user_id="p3", role=7), INVALID, "INVALID_FIELD", {"field": "user.role"}
    ),
    "get-empty-id": Case(lambda s: s.api.get(""), INVALID, "INVALID_FIELD", {"field": "user_id"}),
    "check-without-server": Case(
        lambda s: s.api.check("exists", "", "tool"), INVALID, "INVALID_FIELD", {"field": "server"}
    ),
    "check-without-tool": Case(
        lambda s: s.api.check("exists", "github", ""), INVALID, "INVALID_FIELD", {"field": "tool"}
    ),
    "list-negative-page-size": Case(
        lambda s: s.api.list(page_size=-1), INVALID, "INVALID_FIELD", {"field": "page_size"}
    ),
    "list-garbage-token": Case(
        lambda s: s.api.list(page_token="not a token"),
        INVALID,
        "INVALID_FIELD",
        {"field": "page_token"},
    ),
    # Taken ids and emails.
    "create-taken-id": Case(
        _create(user_id="exists"), EXISTS, "USER_EXISTS", {"user_id": "exists"}
    ),
    "create-taken-email-other-case": Case(
        _create(user_id="p4", email="OTHER@example.COM"), EXISTS, "EMAIL_TAKEN", {"field": "email"}
    ),
    "update-to-taken-email": Case(
        _update(["email"], user_id="exists", email="other@EXAMPLE.com"), EXISTS, "EMAIL_TAKEN"
    ),
    # Stale etags.
    "update-stale-etag": Case(
        lambda s: s.api.update(
            users_pb2.User(user_id="exists", display_name="y", etag=s.stale_etag),
            ["display_name"],
        ),
        ABORTED,
        "ETAG_MISMATCH",
        {"user_id": "exists"},
    ),
    "delete-stale-etag": Case(
        lambda s: s.api.delete("exists", etag=s.stale_etag), ABORTED, "ETAG_MISMATCH"
    ),
    "permissions-stale-etag": Case(
        lambda s: _permissions("exists", users_pb2.Permissions(), s.stale_etag)(s),
        ABORTED,
        "ETAG_MISMATCH",
    ),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def seeded(shared_api: Api) -> AsyncIterator[Seeded]:
    first = await shared_api.create("exists", email="exists@example.com")
    await shared_api.update(users_pb2.User(user_id="exists", display_name="changed"))
    await shared_api.create("other", email="other@example.com")
    yield Seeded(shared_api, first.etag)


@pytest.mark.parametrize("case", [pytest.param(case, id=name) for name, case in CASES.items()])
async def test_bad_input(seeded: Seeded, case: Case) -> None:
    got = await failure(case.call(seeded))
    assert (got.code, got.reason) == (case.code, case.reason), got.message
    assert case.metadata.items() <= got.metadata.items()
    assert case.mentions in got.message


async def test_nothing_changed_after_the_bad_calls(seeded: Seeded) -> None:
    user = await seeded.api.get("exists")
    assert user.revision == 2
    assert user.display_name == "changed"
    assert user.permissions == permissions((ALLOW, "*"))
