"""A token with one wrong character is refused before any database lookup."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event

from plugmesh.machineusers.v1 import machineusers_pb2
from services.machineusers import tokens
from tests.services.machineusers.conftest import Running


@contextlib.contextmanager
def statements(running: Running) -> Iterator[list[str]]:
    """Every SQL statement on the plugin's own tables inside the block (the event bus's
    relay runs its own statements on the outbox meanwhile)."""
    seen: list[str] = []
    engine = running.plugin.database.engine.sync_engine

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "machine_user" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def _typos(token: str) -> list[str]:
    """``token`` with each character after the prefix replaced by another."""
    found = []
    for position in range(len(tokens.PREFIX), len(token)):
        other = next(c for c in tokens.ALPHABET if c != token[position])
        found.append(token[:position] + other + token[position + 1 :])
    return found


async def test_a_token_with_one_wrong_character_is_refused_without_a_query(
    running: Running,
) -> None:
    token = (await running.api.create("typo-target")).token
    typos = _typos(token)

    with statements(running) as seen:
        answers = [await running.api.validate(typo) for typo in typos]

    assert [a.invalid_reason for a in answers] == [machineusers_pb2.INVALID_REASON_MALFORMED] * len(
        typos
    )
    assert seen == [], "no database lookup for a malformed token"


async def test_a_well_formed_token_is_looked_up_by_its_prefix_only(running: Running) -> None:
    token = (await running.api.create("lookup-target")).token

    with statements(running) as seen:
        assert (await running.api.validate(token)).valid

    assert seen, "a well-formed token is looked up"
    assert all(token not in statement for statement in seen)
