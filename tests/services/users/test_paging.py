"""ListUsers: newest first, page by page, filters, and tokens that stay valid."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from meshkit.errors import InvalidArgument
from meshkit.paging import decode_page_token, encode_page_token
from meshkit.permissions import Role
from plugmesh.users.v1 import users_pb2
from services.users.convert import filters_fingerprint
from tests.services.users.support import Api, failure


async def _walk(
    api: Api,
    *,
    page_size: int,
    role: users_pb2.Role.ValueType = users_pb2.ROLE_UNSPECIFIED,
    email: str = "",
) -> tuple[list[str], int]:
    """Every user id a listing returns, page after page, and how many pages it took."""
    ids: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await api.list(page_size=page_size, page_token=token, role=role, email=email)
        pages += 1
        ids += [user.user_id for user in page.users]
        token = page.next_page_token
        if not token:
            return ids, pages
        assert pages < 100, "the walk does not end"


@pytest.mark.parametrize(
    ("page_size", "pages"),
    [
        pytest.param(1, 7, id="one-per-page"),
        pytest.param(3, 3, id="last-page-short"),
        pytest.param(7, 1, id="exact-fit"),
        pytest.param(0, 1, id="default-size"),
        pytest.param(5000, 1, id="capped-size"),
    ],
)
async def test_a_walk_returns_every_user_once_newest_first(
    api: Api, page_size: int, pages: int
) -> None:
    created = [(await api.create(f"u{n}")).user_id for n in range(7)]
    ids, walked = await _walk(api, page_size=page_size)
    assert ids == created[::-1]
    assert walked == pages


async def test_a_walk_is_stable_while_users_come_and_go(api: Api) -> None:
    for n in range(6):
        await api.create(f"u{n}")
    first = await api.list(page_size=2)
    assert [user.user_id for user in first.users] == ["u5", "u4"]
    # Meanwhile: a newer user (before the walk's position) and a deleted one (after it).
    await api.create("newcomer")
    await api.delete("u2")
    ids: list[str] = []
    token = first.next_page_token
    while token:
        page = await api.list(page_size=2, page_token=token)
        ids += [user.user_id for user in page.users]
        token = page.next_page_token
    assert ids == ["u3", "u1", "u0"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param({"role": users_pb2.ROLE_ADMIN}, ["a2", "a1"], id="admins"),
        pytest.param({"role": users_pb2.ROLE_USER}, ["u3", "u2", "u1"], id="users"),
        pytest.param({"email": "A1@EXAMPLE.com"}, ["a1"], id="email-any-case"),
        pytest.param({"email": "nobody@example.com"}, [], id="email-nobody"),
        pytest.param(
            {"role": users_pb2.ROLE_USER, "email": "a1@example.com"}, [], id="both-filters"
        ),
        pytest.param({}, ["u3", "a2", "u2", "a1", "u1"], id="no-filter"),
    ],
)
async def test_filters(api: Api, filters: dict[str, Any], expected: list[str]) -> None:
    await api.create("u1", email="u1@example.com")
    await api.create("a1", email="a1@example.com", role=users_pb2.ROLE_ADMIN)
    await api.create("u2")
    await api.create("a2", role=users_pb2.ROLE_ADMIN)
    await api.create("u3")
    ids, _ = await _walk(api, page_size=1, **filters)
    assert ids == expected


async def test_a_token_only_continues_the_listing_it_came_from(api: Api) -> None:
    for n in range(3):
        await api.create(f"u{n}")
    page = await api.list(page_size=1, role=users_pb2.ROLE_USER)
    got = await failure(api.list(page_size=1, page_token=page.next_page_token))
    assert got.code.name == "INVALID_ARGUMENT"
    assert got.metadata == {"field": "page_token"}
    # The page size may change from page to page.
    rest = await api.list(page_size=10, role=users_pb2.ROLE_USER, page_token=page.next_page_token)
    assert [user.user_id for user in rest.users] == ["u1", "u0"]
    assert not rest.next_page_token


def _token(fields: dict[str, object]) -> str:
    raw = json.dumps(fields).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


FINGERPRINT = filters_fingerprint(None, None)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("%%%", id="not-base64"),
        pytest.param(_token({"v": 1, "q": FINGERPRINT}), id="no-position"),
        pytest.param(_token({"v": 2, "after": 5, "q": FINGERPRINT}), id="other-version"),
        pytest.param(_token({"v": 1, "after": "5", "q": FINGERPRINT}), id="position-not-a-number"),
        pytest.param(_token({"v": 1, "after": True, "q": FINGERPRINT}), id="position-a-boolean"),
        pytest.param(_token({"v": 1, "after": 5, "q": "other"}), id="other-filters"),
        pytest.param(base64.urlsafe_b64encode(b"[1, 2]").decode(), id="not-an-object"),
    ],
)
def test_tokens_this_service_did_not_issue_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_page_token(token, FINGERPRINT)
    assert raised.value.metadata == {"field": "page_token"}


def test_a_token_round_trips_and_the_filters_fingerprint_ignores_email_case() -> None:
    fingerprint = filters_fingerprint(Role.ADMIN, "A@Example.com")
    assert fingerprint == filters_fingerprint(Role.ADMIN, "a@example.COM")
    assert fingerprint != filters_fingerprint(Role.USER, "a@example.com")
    assert decode_page_token(encode_page_token(42, fingerprint), fingerprint) == 42
    assert decode_page_token("", fingerprint) is None
