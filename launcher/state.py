"""What ``plugmesh up`` keeps in the data dir: the registration secret and ``up.json``.

``up.json`` exists while ``plugmesh up`` runs: its pid, the concrete addresses (ports
chosen for port 0 included) and the children's pids. ``plugmesh status`` finds the
registry through it; a second ``plugmesh up`` in the same data dir refuses to start.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from launcher.redaction import redact_url
from launcher.supervisor import Child, ChildExit

STATE_FILE = "up.json"
SECRET_FILE = "registration.secret"


def load_or_create_secret(path: Path) -> str:
    """Read the registration secret from ``path``, creating it (mode 0600) if missing."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(secret + "\n")
    return secret


def read_state(data_dir: Path) -> dict[str, Any] | None:
    """The state ``plugmesh up`` keeps in the data dir, if a live one runs there."""
    try:
        state: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
        pid = int(state["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state if _is_plugmesh(pid) else None


def _is_plugmesh(pid: int) -> bool:
    # A stale file may name a pid that is now another process, or this one (containers
    # restart with the same pids).
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return True  # no /proc to ask: trust the pid
    return b"plugmesh" in command or b"launcher" in command


class UpState:
    """Keeps ``up.json`` current; a :class:`~launcher.supervisor.SupervisorListener`."""

    def __init__(
        self, path: Path, addresses: Mapping[str, str], nats_url: str, *, mesh_tls: bool = False
    ) -> None:
        self._path = path
        self._data: dict[str, Any] = {
            "pid": os.getpid(),
            "nats_url": redact_url(nats_url),
            "addresses": dict(addresses),
            "mesh_tls": mesh_tls,
            "children": {},
        }
        self.write()

    def write(self) -> None:
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._data, indent=2) + "\n")
        temporary.replace(self._path)

    def remove(self) -> None:
        self._path.unlink(missing_ok=True)

    def child_started(self, child: Child) -> None:
        self._data["children"][child.name] = child.pid
        self.write()

    def child_exited(self, child: Child, exit: ChildExit) -> None:
        self._data["children"][child.name] = None
        self.write()
