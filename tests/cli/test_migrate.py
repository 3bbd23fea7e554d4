"""``plugmesh migrate``: every process's database to head, and ``--check`` reporting
without changing anything, on SQLite files and on a shared PostgreSQL database."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshkit._cli_migrate import migrate, targets
from tests.postgres import postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict[str, str]]:
    """SQLite files in a data dir, or one PostgreSQL database shared by every process."""
    if request.param == "sqlite":
        yield {"PLUGMESH_DATA_DIR": str(tmp_path / "data")}
        return
    async with postgres_database(request.getfixturevalue("postgres_url"), "cli") as url:
        yield {"PLUGMESH_DATA_DIR": str(tmp_path / "data"), "PLUGMESH_DATABASE_URL": url}


async def run(env: dict[str, str], *, check: bool) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await migrate(env, out, check=check)
    return code, out.getvalue().splitlines()


async def test_check_reports_databases_behind_then_migrate_brings_all_to_head(
    env: dict[str, str],
) -> None:
    chains = sum(len(target.chains) for target in targets(env))

    before, before_lines = await run(env, check=True)
    applied, applied_lines = await run(env, check=False)
    after, after_lines = await run(env, check=True)

    assert before == 1
    # SQLite: no file yet, one line per process; PostgreSQL: one line per chain.
    assert before_lines
    assert all("no database yet" in line or "behind head" in line for line in before_lines)
    assert applied == 0
    assert after == 0
    for lines in (applied_lines, after_lines):
        assert len(lines) == chains
        assert all("at head" in line for line in lines)


async def test_check_changes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, lines = await run({"PLUGMESH_DATA_DIR": str(data)}, check=True)

    assert code == 1
    assert all("no database yet" in line for line in lines)
    assert not data.exists()
