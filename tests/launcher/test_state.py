from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from launcher.redaction import redact_url
from launcher.state import STATE_FILE, load_or_create_secret, read_state
from tests.launcher.helpers import plugmesh_stand_in


def test_the_secret_is_created_once_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "data" / "registration.secret"

    first = load_or_create_secret(path)
    second = load_or_create_secret(path)

    assert first == second
    assert len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600


def _write_state(data_dir: Path, pid: int) -> None:
    data_dir.mkdir(exist_ok=True)
    (data_dir / STATE_FILE).write_text(json.dumps({"pid": pid, "addresses": {}}))


def test_state_of_a_live_plugmesh_is_read(tmp_path: Path) -> None:
    with plugmesh_stand_in() as pid:
        _write_state(tmp_path, pid)

        assert read_state(tmp_path) == {"pid": pid, "addresses": {}}


@pytest.mark.parametrize(
    "pid",
    [
        pytest.param(os.getpid(), id="this-process"),
        pytest.param(1, id="another-program"),
        pytest.param(2**22 + 1, id="gone"),
    ],
)
def test_a_stale_state_file_is_ignored(tmp_path: Path, pid: int) -> None:
    _write_state(tmp_path, pid)

    assert read_state(tmp_path) is None


def test_no_state_file_means_nothing_runs(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("nats://127.0.0.1:4222", "nats://127.0.0.1:4222", id="plain"),
        pytest.param("nats://me:pw@nats.example:4222", "nats://me:****@nats.example:4222", id="pw"),
        pytest.param("nats://token@nats.example", "nats://****@nats.example", id="token"),
        pytest.param(
            "postgresql+psycopg://app:p@ss@db:5432/app?sslmode=require",
            "postgresql+psycopg://app:****@db:5432/app?sslmode=require",
            id="at-in-password",
        ),
        pytest.param(
            "postgresql://db/app?user=app&password=pw&sslmode=require",
            "postgresql://db/app?user=app&password=****&sslmode=require",
            id="query-password",
        ),
        pytest.param(
            "nats://a:pw1@n1:4222,nats://b:pw2@n2:4222",
            "nats://a:****@n1:4222,nats://b:****@n2:4222",
            id="cluster",
        ),
        pytest.param("./data/dir", "./data/dir", id="not-a-url"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown
