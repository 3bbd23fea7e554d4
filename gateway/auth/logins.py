"""``auth.login``: the first request of a person's session is announced to the mesh.

The users plugin provisions a person on ``auth.login`` (DESIGN §7), so the gateway
publishes one when it first verifies a JWT of a session. A session is the token's
``jti`` claim, or the token itself (by its digest) when it has none.

Every gateway replica that sees the session publishes the same event: its id is made
from the issuer, subject and session, time-ordered by the token's ``iat`` (or, without
one, its ``exp``) as a UUIDv7,
so JetStream's dedupe window and every consumer's inbox keep one. A session counts as
announced only once JetStream acknowledged the event; until then the next request of the
session tries again, so an outage of NATS delays provisioning instead of losing it.
"""

from __future__ import annotations

import collections
import hashlib
import time
from dataclasses import dataclass
from typing import Any

from meshkit.events import uuid7_of
from plugmesh.events.v1 import auth_events_pb2, event_pb2

__all__ = ["Login", "Logins", "login_of"]


@dataclass(frozen=True)
class Login:
    """A person's session as the JWT tells it."""

    subject: str
    email: str
    display_name: str
    issuer: str
    session_id: str
    issued_millis: int

    @property
    def key(self) -> tuple[str, str, str]:
        """What makes two requests the same session."""
        return (self.issuer, self.subject, self.session_id)

    def event_id(self) -> str:
        """The same UUIDv7 on every gateway: time from ``iat``, the rest from the key."""
        digest = hashlib.sha256("\x00".join(self.key).encode()).digest()
        return uuid7_of(
            self.issued_millis,
            int.from_bytes(digest[:2], "big"),
            int.from_bytes(digest[2:10], "big"),
        )

    def payload(self, *, ip_address: str, user_agent: str) -> auth_events_pb2.AuthLogin:
        """The ``auth.login`` payload of this session, from where it was first seen."""
        return auth_events_pb2.AuthLogin(
            actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id=self.subject),
            user_id=self.subject,
            email=self.email,
            display_name=self.display_name,
            issuer=self.issuer,
            session_id=self.session_id,
            ip_address=ip_address,
            user_agent=user_agent,
        )


def login_of(token: str, claims: dict[str, Any]) -> Login:
    """The session of a verified JWT (``sub`` already checked)."""
    jti = claims.get("jti")
    session = jti if isinstance(jti, str) and jti else hashlib.sha256(token.encode()).hexdigest()
    issued = _seconds(claims.get("iat"))
    if issued is None:  # every gateway must still make the same id: exp is required
        issued = _seconds(claims.get("exp")) or time.time()
    return Login(
        subject=str(claims["sub"]),
        email=_text(claims.get("email")),
        display_name=_text(claims.get("name")),
        issuer=_text(claims.get("iss")),
        session_id=session[:128],
        issued_millis=int(issued * 1000),
    )


class Logins:
    """The sessions this gateway has announced, the most recent ``max_entries`` of them."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._max = max_entries
        self._announced: collections.OrderedDict[tuple[str, str, str], None] = (
            collections.OrderedDict()
        )
        self._pending: set[tuple[str, str, str]] = set()

    def claim(self, login: Login) -> bool:
        """Whether ``login`` needs announcing now; the caller then reports :meth:`done`."""
        key = login.key
        if key in self._announced:
            self._announced.move_to_end(key)
            return False
        if key in self._pending:
            return False
        self._pending.add(key)
        return True

    def done(self, login: Login, *, announced: bool) -> None:
        """The announcement of ``login`` ended; ``announced`` says whether it got through."""
        self._pending.discard(login.key)
        if announced:
            self._announced[login.key] = None
            while len(self._announced) > self._max:
                self._announced.popitem(last=False)


def _seconds(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value[:256] if isinstance(value, str) else ""
