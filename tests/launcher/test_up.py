"""``plugmesh up`` end to end: real processes, real nats-server, ephemeral ports."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from launcher.processes import PROCESSES
from launcher.status import MeshView, RegistryUnreachable, fetch_view
from meshkit.tls import MeshTls
from tests.launcher.helpers import listening, pid_alive, stop_up, up_tls, wait_up
from tests.support.waiting import eventually, until

_MISSING = [
    module
    for module in ("registry.__main__", "services.users.__main__")
    if importlib.util.find_spec(module) is None
]

pytestmark = [
    pytest.mark.skipif(
        bool(_MISSING),
        reason=f"the mesh's processes are not written yet: {', '.join(_MISSING)} missing",
    ),
    pytest.mark.timeout(120),
]

NAMES = [process.name for process in PROCESSES]
#: What the registry lists: every process, and the gateway's admin API of the upstream
#: MCP servers, which it serves on a port of its own.
SERVICES = [*NAMES, "mcp-servers"]


@dataclass
class Up:
    """A running ``plugmesh up`` and where to find its state."""

    process: subprocess.Popen[bytes]
    data_dir: Path
    output: Path

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.data_dir / "up.json").read_text())
        return state

    def text(self) -> str:
        return self.output.read_text(errors="replace")


def _environment(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    env["PLUGMESH_DATA_DIR"] = str(data_dir)
    env["PLUGMESH_NATS_ADDRESS"] = "127.0.0.1:0"
    env["PLUGMESH_SHUTDOWN_GRACE_SECONDS"] = "2"
    for process in PROCESSES:
        for variable in process.address_vars:
            env[variable] = "127.0.0.1:0"
    return env


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    data_dir, output = tmp_path / "data", tmp_path / "up.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up"],
            env=_environment(data_dir),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Up(process, data_dir, output)
    try:
        yield running
    finally:
        stop_up(process, grace_seconds=30)


async def _wait_ready(up: Up, timeout_seconds: float = 60.0) -> None:
    await wait_up(up.process, up.output, timeout_seconds)


async def _view(address: str, tls: MeshTls | None, secret: str) -> MeshView | None:
    try:
        return await fetch_view(address, timeout_seconds=1.0, tls=tls, secret=secret)
    except RegistryUnreachable:
        return None


async def _until_health(
    up: Up, address: str, name: str, serving: bool, timeout_seconds: float, tls: MeshTls | None
) -> str:
    """Poll the registry until ``name`` is (not) SERVING; return the health it reported."""
    secret = (up.data_dir / "registration.secret").read_text().strip()

    async def reported() -> str | None:
        view = await _view(address, tls, secret)
        health = view.health_of(name) if view is not None else None
        return health if health is not None and (health == "SERVING") == serving else None

    state = "SERVING" if serving else "not SERVING"
    return await eventually(
        reported, timeout_seconds=timeout_seconds, interval_seconds=0.05, what=f"{name} {state}"
    )


def _status(up: Up) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    return subprocess.run(
        [sys.executable, "-m", "launcher.cli", "status", "--data-dir", str(up.data_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


async def test_up_serves_everything_restarts_a_killed_plugin_and_stops_cleanly(up: Up) -> None:
    await _wait_ready(up)
    state = up.state()
    addresses: dict[str, str] = state["addresses"]
    registry = addresses["PLUGMESH_REGISTRY_ADDRESS"]
    secret_file = up.data_dir / "registration.secret"
    assert secret_file.stat().st_mode & 0o777 == 0o600
    assert secret_file.read_text().strip() not in up.text(), "the secret is never printed"

    # Every process is SERVING, in the registry's own words.
    status = _status(up)
    assert status.returncode == 0, status.stderr
    health = {row.split()[0]: row.split()[3] for row in status.stdout.splitlines()[1:]}
    assert health == dict.fromkeys(SERVICES, "SERVING"), status.stdout
    # The console's address is printed beside the gateway's, and it answers there.
    gateway_http = addresses["PLUGMESH_GATEWAY_HTTP_ADDRESS"]
    assert f"console: http://{gateway_http}/console" in up.text()
    async with httpx.AsyncClient() as client:
        console = await client.get(f"http://{gateway_http}/console")
    assert console.status_code == 200

    # kill -9 of a plugin: its health stream breaks, so the registry reports it UNREACHABLE
    # at once (its lease would still run for seconds); then restarted, SERVING again.
    killed = state["children"]["users"]
    os.kill(killed, signal.SIGKILL)
    tls = up_tls(up.data_dir)
    reported = await _until_health(
        up, registry, "users", serving=False, timeout_seconds=10.0, tls=tls
    )
    assert reported == "UNREACHABLE"
    await until(
        lambda: up.state()["children"].get("users") not in (None, killed),
        timeout_seconds=10,
        what="the supervisor to restart users",
    )
    # A new Python process: on a loaded machine its imports alone take seconds.
    await _until_health(up, registry, "users", serving=True, timeout_seconds=30.0, tls=tls)
    assert f"users (pid {killed}) killed by SIGKILL" in up.text()

    # SIGTERM: every child gone, nothing left listening, the state file removed.
    children = [pid for pid in up.state()["children"].values() if pid]
    assert len(children) == len(NAMES) + 1, "nats and every process"
    up.process.send_signal(signal.SIGTERM)
    assert up.process.wait(timeout=60) == 0, up.text()
    assert [pid for pid in children if pid_alive(pid)] == []
    assert [address for address in addresses.values() if listening(address)] == []
    assert not (up.data_dir / "up.json").exists()
