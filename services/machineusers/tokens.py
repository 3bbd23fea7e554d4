"""Machine tokens: their format, how they are made, stored and compared.

A token is ``pmk_`` + 43 random base62 characters + a 6-character base62 checksum::

    pmk_4fQ0s9…(43)…Zt1 a8Kq2B
    └─┬┘└──────┬──────┘ └──┬─┘
    prefix   random     CRC32 of everything before it

- 43 characters drawn with :mod:`secrets` from 62 carry 256.03 bits.
- The checksum (CRC-32 of prefix and random part, base62, fixed width) lets anyone tell
  a token from a typo or a look-alike without a database: every single-character change
  breaks it (CRC-32 catches every burst of up to 32 bits; a changed checksum character
  decodes to another number). Secret scanners can match ``pmk_[0-9A-Za-z]{49}`` and
  check it the same way.
- The service keeps only the SHA-256 of a token (:func:`token_hash`). A token is found
  by its display prefix (its first 12 characters, shown in listings), then the stored
  hash is compared with :func:`hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from meshkit.token_format import (
    ALPHABET,
    CHECKSUM_LENGTH,
    PREFIX,
    RANDOM_LENGTH,
    TOKEN_LENGTH,
    checksum,
    checksum_matches,
)

__all__ = [
    "ALPHABET",
    "CHECKSUM_LENGTH",
    "DISPLAY_PREFIX_LENGTH",
    "PREFIX",
    "RANDOM_LENGTH",
    "TOKEN_LENGTH",
    "IssuedToken",
    "MalformedToken",
    "fingerprint",
    "hashes_match",
    "issue",
    "parse",
    "token_hash",
]

#: "pmk_" and 8 more characters: enough to recognise a token, never enough to use it.
DISPLAY_PREFIX_LENGTH = 12

_INDEX = {character: value for value, character in enumerate(ALPHABET)}


class MalformedToken(ValueError):
    """Not a plugmesh machine token: wrong prefix, length, characters or checksum."""


@dataclass(frozen=True)
class IssuedToken:
    """A new token, and what may be stored and shown of it.

    Attributes:
        token: The token itself: handed to the caller once, never stored or logged.
        hash: Its SHA-256, hex: what the database keeps.
        prefix: Its first 12 characters, for display and lookup.
        last_four: Its last four characters, for display.
    """

    token: str
    hash: str
    prefix: str
    last_four: str

    def __repr__(self) -> str:
        # Keeps the token out of tracebacks, logs and assertion messages.
        return f"IssuedToken(prefix={self.prefix!r}, last_four={self.last_four!r})"


@dataclass(frozen=True)
class ParsedToken:
    """A well-formed token's parts, from :func:`parse`."""

    hash: str
    prefix: str

    def __repr__(self) -> str:
        return f"ParsedToken(prefix={self.prefix!r})"


def issue() -> IssuedToken:
    """Make a new token from 256 bits of :mod:`secrets` randomness."""
    body = PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    token = body + checksum(body)
    return IssuedToken(
        token=token,
        hash=token_hash(token),
        prefix=token[:DISPLAY_PREFIX_LENGTH],
        last_four=token[-4:],
    )


def parse(token: str) -> ParsedToken:
    """Check the format of ``token`` and return its hash and display prefix.

    Raises:
        MalformedToken: The prefix, length, alphabet or checksum is wrong. The message
            never quotes the token.
    """
    if not token.startswith(PREFIX):
        raise MalformedToken(f"a machine token starts with {PREFIX!r}")
    if len(token) != TOKEN_LENGTH:
        raise MalformedToken(f"a machine token has {TOKEN_LENGTH} characters, not {len(token)}")
    if any(character not in _INDEX for character in token[len(PREFIX) :]):
        raise MalformedToken("a machine token has only letters and digits after its prefix")
    if not checksum_matches(token):
        raise MalformedToken("the machine token's checksum does not match (a typo?)")
    return ParsedToken(hash=token_hash(token), prefix=token[:DISPLAY_PREFIX_LENGTH])


def token_hash(token: str) -> str:
    """The SHA-256 of ``token``, hex: the only form in which a token is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def hashes_match(stored: str, presented: str) -> bool:
    """Whether two token hashes are equal, compared in constant time."""
    return hmac.compare_digest(stored.encode(), presented.encode())


def fingerprint(credential: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``credential`` (``auth.failed`` events)."""
    return hashlib.sha256(credential.encode()).hexdigest()[:16]
