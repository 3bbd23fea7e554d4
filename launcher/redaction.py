"""Secrets kept out of what the launcher prints and writes: ``up.json``, the progress
lines of ``plugmesh up``, ``plugmesh config``.

A URL keeps everything but its password: ``postgresql+psycopg://app:****@db/app``. NATS
takes a lone user part as a token, so a user part without a password is masked whole.
Query parameters named like a password, secret or token are masked too (libpq accepts
``?password=``).
"""

from __future__ import annotations

import re

__all__ = ["MASK", "redact_url"]

#: What a masked secret shows.
MASK = "****"

# The user part runs from "scheme://" to the authority's last "@" (an unencoded "@" in a
# password still ends at the host, as urlsplit reads it); several comma-separated URLs
# (a NATS cluster) are each matched.
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/?#]*)@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&][^=&#]*(?:pass|secret|token)[^=&#]*=)[^&#]*", re.I)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    masked = f"{user}:{MASK}" if colon else MASK
    return f"{match['scheme']}{masked}@"


def redact_url(text: str) -> str:
    """``text`` with the password (or token) of every URL in it replaced by ``****``.

    >>> redact_url("nats://me:pw@nats.example:4222")
    'nats://me:****@nats.example:4222'
    >>> redact_url("nats://token@nats.example")
    'nats://****@nats.example'
    """
    return _SECRET_QUERY.sub(rf"\g<key>{MASK}", _USERINFO.sub(_mask_userinfo, text))
