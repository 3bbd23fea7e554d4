"""The format of a plugmesh machine token, for whoever must recognise one: the
machine-users plugin that issues them, a scanner looking for leaked ones.

A token is ``pmk_`` + 43 base62 characters + a 6-character base62 checksum, the CRC-32
of everything before it (see :mod:`services.machineusers.tokens`).
"""

from __future__ import annotations

import hmac
import re
import string
import zlib

__all__ = [
    "ALPHABET",
    "CANDIDATE",
    "CHECKSUM_LENGTH",
    "PREFIX",
    "RANDOM_LENGTH",
    "TOKEN_LENGTH",
    "checksum",
    "checksum_matches",
]

PREFIX = "pmk_"
ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase
RANDOM_LENGTH = 43
CHECKSUM_LENGTH = 6
TOKEN_LENGTH = len(PREFIX) + RANDOM_LENGTH + CHECKSUM_LENGTH
#: What looks like a token in a text (its checksum still to check).
CANDIDATE = re.compile(rf"\b{PREFIX}[0-9A-Za-z]{{{RANDOM_LENGTH + CHECKSUM_LENGTH}}}\b")


def checksum(body: str) -> str:
    """The checksum of a token's ``body`` (prefix and random part)."""
    value = zlib.crc32(body.encode())
    digits = []
    for _ in range(CHECKSUM_LENGTH):
        value, remainder = divmod(value, len(ALPHABET))
        digits.append(ALPHABET[remainder])
    return "".join(reversed(digits))


def checksum_matches(token: str) -> bool:
    """Whether ``token``'s last characters are the checksum of the rest (compared in
    constant time)."""
    body, found = token[:-CHECKSUM_LENGTH], token[-CHECKSUM_LENGTH:]
    return hmac.compare_digest(checksum(body), found)
