"""A throwaway PostgreSQL server for the tests, and a fresh database per test.

The ``postgres_url`` fixture (tests/conftest.py) starts one server per test session,
only when a test asks for it: Debian's ``postgresql`` package (tools/debian-packages.txt)
runs ``initdb`` and ``postgres`` in a temporary directory, on a free loopback port, with
its unix socket in that directory too. ``initdb`` and ``postgres`` refuse to run as root,
so under root (as in CI) they run as the ``postgres`` user the package creates. With
``PLUGMESH_TEST_POSTGRES_URL`` set (a role that may create databases) that server is used
instead and nothing is started.

Durability is off (``fsync``, ``synchronous_commit``, ``full_page_writes``): nothing in a
test outlives the server, and each test creates and drops a database.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from meshkit.db import async_url
from tests.debian import require_binary

__all__ = ["postgres_database", "postgres_server", "server_binaries"]

_START_TIMEOUT_SECONDS = 30.0
_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "300",
    "listen_addresses": "127.0.0.1",
}


def server_binaries() -> Path:
    """The directory holding ``initdb`` and ``postgres``: on ``PATH``, or the newest
    ``/usr/lib/postgresql/<version>/bin``; missing fails under CI and skips elsewhere."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    search = os.pathsep.join([os.environ.get("PATH", ""), *map(str, versions)])
    return Path(require_binary("initdb", path=search)).parent


@contextlib.contextmanager
def postgres_server(binaries: Path) -> Iterator[str]:
    """Run a new PostgreSQL cluster until the block ends; yields the URL of its
    ``postgres`` superuser (trust authentication, loopback only)."""
    run_as = _unprivileged_user()
    # The server's user must reach its directory: under root, a TMPDIR inside a private
    # home would not do, while /tmp is open to everyone.
    root = Path(tempfile.mkdtemp(prefix="plugmesh-pg-", dir="/tmp" if run_as else None))
    if run_as is not None:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
    data, sockets = root / "data", root / "socket"
    process: subprocess.Popen[bytes] | None = None
    log = root / "postgres.log"
    try:
        initdb = [str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"]
        _run([*initdb, "-E", "UTF8", "--no-sync", "--no-instructions"], run_as, root)
        _run(["mkdir", str(sockets)], run_as, root)
        port = _free_port()
        command = [str(binaries / "postgres"), "-D", str(data), "-p", str(port)]
        command += ["-k", str(sockets)]
        command += [arg for key, value in _SETTINGS.items() for arg in ("-c", f"{key}={value}")]
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=root,
                stdout=output,
                stderr=subprocess.STDOUT,
                **_as_user(run_as),
            )
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        _wait_until_accepting(process, url, log)
        yield url
    finally:
        if process is not None:
            _stop(process)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def postgres_database(server_url: str, prefix: str = "test") -> AsyncIterator[str]:
    """A new, empty database on the server of ``server_url``; dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(server_url), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _unprivileged_user() -> pwd.struct_passwd | None:
    """Who runs the server: nobody else when not root, else the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError as exc:
        raise RuntimeError(
            "running as root, PostgreSQL needs the 'postgres' user that Debian's "
            "postgresql package creates"
        ) from exc


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    env = {**os.environ, "HOME": user.pw_dir, "USER": user.pw_name, "LOGNAME": user.pw_name}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "env": env}


def _run(command: list[str], user: pwd.struct_passwd | None, cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, check=False, **_as_user(user))
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(f"{command[0]} failed ({result.returncode}): {output}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_accepting(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            output = log.read_text(errors="replace")
            raise RuntimeError(f"postgres exited with {process.returncode}: {output}")
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's "fast" shutdown: sessions are ended, no waiting for clients.
    if process.poll() is None:
        process.send_signal(2)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
