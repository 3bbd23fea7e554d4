"""``plugmesh up`` end to end, twice on one data dir: the first start makes the admin
token, prints it once and keeps it in admin.token (0600); the second reuses it without
printing it; the token works through the gateway; no token is stored anywhere else
under the data dir, nor in any process's log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from launcher.processes import PROCESSES
from services.machineusers.bootstrap import ADMIN_TOKEN_FILE
from tests.launcher.helpers import stop_up, wait_up

pytestmark = pytest.mark.timeout(240)


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    env["PLUGMESH_DATA_DIR"] = str(data_dir)
    env["PLUGMESH_NATS_ADDRESS"] = "127.0.0.1:0"
    env["PLUGMESH_SHUTDOWN_GRACE_SECONDS"] = "2"
    for process in PROCESSES:
        for variable in process.address_vars:
            env[variable] = "127.0.0.1:0"
    return env


@contextlib.contextmanager
def plugmesh_up(data_dir: Path, output: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``plugmesh up`` on ``data_dir``, its output in ``output``; stopped (SIGTERM) after."""
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up"],
            env=_environment(data_dir),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_up(process, grace_seconds=60)


async def ready(process: subprocess.Popen[bytes], output: Path) -> str:
    """Wait until ``plugmesh up`` says it is up; return what it printed."""
    return await wait_up(process, output, timeout_seconds=90)


def gateway_url(data_dir: Path) -> str:
    state = json.loads((data_dir / "up.json").read_text())
    return f"http://{state['addresses']['PLUGMESH_GATEWAY_HTTP_ADDRESS']}"


async def test_up_makes_the_admin_token_once_and_reuses_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    token_file = data_dir / ADMIN_TOKEN_FILE

    with plugmesh_up(data_dir, tmp_path / "first.out") as first:
        printed = await ready(first, tmp_path / "first.out")
        token = token_file.read_text().strip()
        assert token.startswith("pmk_")
        assert token_file.stat().st_mode & 0o777 == 0o600
        assert printed.count(token) == 1, "the first start prints the token once"
        async with httpx.AsyncClient(base_url=gateway_url(data_dir), timeout=10) as http:
            users = await http.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
            anonymous = await http.get("/v1/users")
            typo = token[:-1] + ("A" if token[-1] != "A" else "B")
            mistyped = await http.get("/v1/users", headers={"Authorization": f"Bearer {typo}"})
        assert users.status_code == 200, users.text
        assert (anonymous.status_code, mistyped.status_code) == (401, 401)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0

    with plugmesh_up(data_dir, tmp_path / "second.out") as second:
        printed = await ready(second, tmp_path / "second.out")
        assert token not in printed, "a later start never prints the token"
        assert f"admin token: {token_file}" in printed
        assert token_file.read_text().strip() == token
        async with httpx.AsyncClient(base_url=gateway_url(data_dir), timeout=10) as http:
            users = await http.get("/v1/users", headers={"Authorization": f"Bearer {token}"})
        assert users.status_code == 200, users.text
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0

    secret = token[12:-4].encode()  # the part that is never shown
    holding = [
        str(path.relative_to(data_dir))
        for path in sorted(data_dir.rglob("*"))
        if path.is_file() and path != token_file and secret in path.read_bytes()
    ]
    assert holding == [], "the token is stored in plain text only in admin.token"
    assert list((data_dir / "logs").glob("*.log")), "the processes' logs were scanned"
