"""``plugmesh migrate``: databases to head, and ``--check`` reporting without changing
anything, on the SQLite files of one machine and on a process's own PostgreSQL database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

import launcher.migrate
from launcher.cli import main
from launcher.migrate import migrate, targets
from launcher.processes import PROCESSES
from tests.support.databases import is_sqlite


@pytest.fixture
def setup(database_url: str, tmp_path: Path) -> tuple[dict[str, str], tuple[str, ...]]:
    """An environment and the processes to migrate in it: on SQLite, every process's own
    file in a data dir (``database_url`` unused); on PostgreSQL, the users process's own
    database."""
    env = {"PLUGMESH_DATA_DIR": str(tmp_path / "data")}
    if is_sqlite(database_url):
        return env, ()
    return {**env, "PLUGMESH_DATABASE_URL": database_url}, ("users",)


async def run(env: dict[str, str], names: tuple[str, ...], *, check: bool) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = await migrate(env, out, names, check=check)
    return code, out.getvalue().splitlines()


async def test_check_reports_databases_behind_then_migrate_brings_them_to_head(
    setup: tuple[dict[str, str], tuple[str, ...]],
) -> None:
    env, names = setup
    chains = [chain.version_table for target in targets(env, names) for chain in target.chains]

    before, before_lines = await run(env, names, check=True)
    applied, applied_lines = await run(env, names, check=False)
    after, after_lines = await run(env, names, check=True)

    assert (before, applied, after) == (1, 0, 0)
    # SQLite: no file yet, one line per process; PostgreSQL: one line per chain.
    assert before_lines
    assert all("no database yet" in line or "behind head" in line for line in before_lines)
    for lines in (applied_lines, after_lines):
        assert [line.split()[1] for line in lines] == chains
        assert all("at head" in line for line in lines)


def test_check_changes_nothing_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"

    code = main(["migrate", "users", "audit", "--check", "--data-dir", str(data)])

    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert [line.split()[0] for line in lines] == ["users", "audit"]
    assert all("no database yet" in line for line in lines)
    assert not data.exists()


def test_every_process_with_a_database_has_migrations() -> None:
    with_database = {spec.name for spec in PROCESSES if spec.uses_database}
    assert set(launcher.migrate.PROCESSES) == with_database
