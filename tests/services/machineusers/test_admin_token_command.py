"""``plugmesh admin-token``: the bootstrap admin for a mesh that runs without ``plugmesh up``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from services.machineusers.bootstrap import ADMIN_TOKEN_FILE, BOOTSTRAP_NAME
from tests.services.machineusers.conftest import Running
from tests.services.machineusers.support import SECRET


async def admin_token(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run the real ``plugmesh admin-token`` in a child process."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "launcher.cli",
        "admin-token",
        *args,
        env={**clean, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(child.communicate(), timeout=60)
    assert child.returncode is not None
    return child.returncode, out.decode(), err.decode()


async def test_the_admin_token_is_shown_once_then_only_its_file(
    running: Running, tmp_path: Path
) -> None:
    port = running.plugin.server.address.rpartition(":")[2]
    env = {
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_DATA_DIR": str(tmp_path / "exec"),
        # As in a container: the variable holds the listen address, dialled on loopback.
        "PLUGMESH_MACHINE_USERS_ADDRESS": f"0.0.0.0:{port}",
    }

    first = await admin_token(env)
    second = await admin_token(env)

    path = tmp_path / "exec" / ADMIN_TOKEN_FILE
    token = path.read_text().strip()
    assert first == (0, f"admin token (shown once; kept in {path}): {token}\n", "")
    assert second == (0, f"admin token: {path}\n", "")
    assert path.stat().st_mode & 0o777 == 0o600
    answer = await running.api.validate(token)
    assert answer.valid
    assert answer.machine_user.name == BOOTSTRAP_NAME


async def test_without_the_registration_secret_no_admin_is_made(
    running: Running, tmp_path: Path
) -> None:
    code, out, err = await admin_token(
        {"PLUGMESH_DATA_DIR": str(tmp_path)}, "--address", running.plugin.server.address
    )

    assert (code, out) == (2, "")
    assert "PLUGMESH_REGISTRATION_SECRET is not set" in err
    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()


async def test_a_wrong_secret_is_refused_and_says_so(running: Running, tmp_path: Path) -> None:
    code, out, err = await admin_token(
        {"PLUGMESH_REGISTRATION_SECRET": "not-the-secret", "PLUGMESH_DATA_DIR": str(tmp_path)},
        "--address",
        running.plugin.server.address,
    )

    assert (code, out) == (1, "")
    assert "cannot make the admin token" in err
    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()
