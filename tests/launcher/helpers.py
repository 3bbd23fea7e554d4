"""Helpers for the CLI tests: running ``plugmesh up``, checking that processes and ports
are gone."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.certs import LAUNCHER_IDENTITY, TLS_DIR
from meshkit.tls import MeshTls


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count: it has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    # The state follows the parenthesised command name, which may itself hold spaces.
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def listening(address: str) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid``, found through ``/proc``."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        parents[int(entry.name)] = int(fields[1])
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def plugmesh_stand_in() -> Iterator[int]:
    """A live process whose command line names the launcher, as a running ``plugmesh up`` has."""
    script = "import time, launcher; print('ready', flush=True); time.sleep(60)"
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE) as process:
        try:
            assert process.stdout is not None
            process.stdout.readline()  # running its own command line by now, not pytest's
            yield process.pid
        finally:
            process.kill()


#: What ``plugmesh up`` prints once every process is SERVING.
READY_LINE = "Ctrl-C stops the mesh"


def printed(output: Path) -> str:
    """What a process has written to ``output`` so far."""
    return output.read_text(errors="replace")


async def wait_up(process: subprocess.Popen[bytes], output: Path, timeout_seconds: float) -> str:
    """Wait until ``plugmesh up`` (writing to ``output``) says it is up; return what it
    printed. Fails the test when it exits first or takes longer than ``timeout_seconds``."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        text = printed(output)
        if READY_LINE in text:
            return text
        if process.poll() is not None:
            pytest.fail(f"plugmesh up exited with {process.returncode}:\n{text}")
        if time.monotonic() > deadline:
            pytest.fail(f"plugmesh up was not ready after {timeout_seconds}s:\n{text}")
        await asyncio.sleep(0.1)


def stop_up(process: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """Stop ``plugmesh up`` with SIGTERM (SIGKILL after ``grace_seconds``), then kill
    whatever it started that is still alive: nothing a test starts may outlive it."""
    leftovers = descendants(process.pid)
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pid in leftovers + descendants(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def up_tls(data_dir: Path) -> MeshTls:
    """The certificate ``plugmesh up`` made for itself in ``data_dir``: a client of the
    mesh's internal ports presents it."""
    directory = data_dir / TLS_DIR
    return MeshTls(
        directory / f"{LAUNCHER_IDENTITY}.crt",
        directory / f"{LAUNCHER_IDENTITY}.key",
        directory / "ca.crt",
    )
