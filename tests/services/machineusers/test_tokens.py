"""The token format: prefix, length, alphabet, checksum; hashes, never the token."""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import pytest

from services.machineusers import tokens

SCANNER = re.compile(r"^pmk_[0-9A-Za-z]{49}$")


def test_a_token_has_the_prefix_the_length_and_256_random_bits() -> None:
    issued = tokens.issue()

    assert issued.token.startswith("pmk_")
    assert len(issued.token) == tokens.TOKEN_LENGTH == 53
    assert SCANNER.match(issued.token)
    assert tokens.RANDOM_LENGTH * math.log2(len(tokens.ALPHABET)) >= 256
    assert issued.prefix == issued.token[:12]
    assert issued.last_four == issued.token[-4:]
    assert issued.hash == tokens.token_hash(issued.token)
    assert issued.token not in issued.hash


def test_tokens_differ_every_time() -> None:
    assert len({tokens.issue().token for _ in range(200)}) == 200


def test_a_well_formed_token_parses_to_its_hash_and_prefix() -> None:
    issued = tokens.issue()

    parsed = tokens.parse(issued.token)

    assert (parsed.hash, parsed.prefix) == (issued.hash, issued.prefix)


def test_every_single_character_change_breaks_the_checksum() -> None:
    token = tokens.issue().token
    for position in range(len(tokens.PREFIX), len(token)):
        for replacement in tokens.ALPHABET:
            if replacement == token[position]:
                continue
            typo = token[:position] + replacement + token[position + 1 :]
            with pytest.raises(tokens.MalformedToken):
                tokens.parse(typo)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(lambda t: "pmx_" + t[4:], "starts with", id="prefix"),
        pytest.param(lambda t: t[:-1], "53 characters", id="short"),
        pytest.param(lambda t: t + "0", "53 characters", id="long"),
        pytest.param(lambda t: t[:20] + "-" + t[21:], "letters and digits", id="alphabet"),
        pytest.param(lambda t: t[:20] + t[21] + t[20] + t[22:], "checksum", id="transposed"),
        pytest.param(lambda t: "", "starts with", id="empty"),
        pytest.param(lambda t: "Bearer " + t, "starts with", id="with-scheme"),
    ],
)
def test_malformed_tokens_are_named_without_quoting_them(
    mutate: Callable[[str], str], message: str
) -> None:
    token = tokens.issue().token
    bad = mutate(token)
    if bad == token:  # a transposition of two equal characters changes nothing
        pytest.skip("the mutation left the token as it was")

    with pytest.raises(tokens.MalformedToken, match=message) as raised:
        tokens.parse(bad)

    assert token[4:16] not in str(raised.value)


def test_the_token_never_shows_in_a_repr() -> None:
    issued = tokens.issue()
    parsed = tokens.parse(issued.token)

    assert issued.token not in repr(issued)
    assert issued.token[12:] not in repr(parsed)


def test_hashes_are_compared_in_constant_time_and_exactly() -> None:
    issued = tokens.issue()

    assert tokens.hashes_match(issued.hash, tokens.token_hash(issued.token))
    assert not tokens.hashes_match(issued.hash, tokens.token_hash(tokens.issue().token))


def test_a_fingerprint_is_16_hex_digits_that_do_not_contain_the_token() -> None:
    issued = tokens.issue()

    fingerprint = tokens.fingerprint(issued.token)

    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    assert fingerprint == issued.hash[:16]
