"""``auth.login``: which requests announce a session, and the event's id."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from gateway.auth import events as auth_events
from gateway.auth.events import TokenBucket
from gateway.auth.logins import Login, Logins, login_of


def _login(session: str = "s-1", *, issued: int = 1_700_000_000_000) -> Login:
    return Login("ada", "ada@example.com", "Ada", "https://idp", session, issued)


def test_a_session_is_the_jti_or_else_the_token_digest() -> None:
    with_jti = login_of("t1", {"sub": "ada", "jti": "abc", "iat": 1_700_000_000, "name": "Ada"})
    without = login_of("t2", {"sub": "ada", "iat": 1_700_000_000})

    assert (with_jti.session_id, with_jti.display_name) == ("abc", "Ada")
    assert len(without.session_id) == 64
    assert "t2" not in without.session_id
    assert login_of("t3", {"sub": "ada"}).session_id != without.session_id


def test_without_iat_the_id_is_timed_by_exp_so_every_gateway_agrees() -> None:
    claims = {"sub": "ada", "exp": 1_800_000_000}

    assert login_of("t", claims).issued_millis == 1_800_000_000_000
    assert login_of("t", claims).event_id() == login_of("t", dict(claims)).event_id()


def test_the_event_id_is_the_same_uuid7_for_the_same_session_on_every_gateway() -> None:
    ids = {_login().event_id() for _ in range(3)}
    (event_id,) = ids
    parsed = uuid.UUID(event_id)

    assert str(parsed) == event_id
    assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
    assert parsed.int >> 80 == 1_700_000_000_000  # time-ordered by iat
    assert _login("s-2").event_id() != event_id


def test_a_session_is_announced_once_and_again_only_when_it_did_not_get_through() -> None:
    logins = Logins(max_entries=2)
    first = _login("s-1")

    assert logins.claim(first)
    assert not logins.claim(first)  # in flight
    logins.done(first, announced=False)
    assert logins.claim(first)  # failed: the next request tries again
    logins.done(first, announced=True)
    assert not logins.claim(first)

    for session in ("s-2", "s-3"):
        assert logins.claim(_login(session))
        logins.done(_login(session), announced=True)
    assert logins.claim(first)  # forgotten: the oldest of more than max_entries


def test_the_token_bucket_allows_the_burst_then_the_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    monkeypatch.setattr(auth_events, "time", SimpleNamespace(monotonic=lambda: now[0]))
    bucket = TokenBucket(100.0, burst=5)

    assert [bucket.take() for _ in range(6)] == [True] * 5 + [False]
    now[0] = 0.05  # five more tokens at 100 a second
    assert sum(bucket.take() for _ in range(20)) == 5
