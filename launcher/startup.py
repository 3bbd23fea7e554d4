"""The start of ``plugmesh up``: each process in order, waited for, then the first admin.

NATS (unless external), the registry, then the gateway and the plugins together; each
step waits until the process accepts connections, then everything waits until the
registry reports every process SERVING. Then the first admin: an admin machine token in
``<data dir>/admin.token`` (mode 0600), made and printed once on the first start, reused
later (:mod:`services.machineusers.bootstrap`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from launcher.addresses import split_address
from launcher.certs import LAUNCHER_IDENTITY, MeshCertificates
from launcher.natsd import NatsServerError, nats_command, wait_until_accepting
from launcher.output import render_table
from launcher.processes import PROCESSES, ProcessSpec, process_named
from launcher.redaction import redact_url
from launcher.status import STATUS_HEADERS, RegistryUnreachable, status_rows, wait_until_serving
from launcher.supervisor import Child, ChildSpec, Supervisor, describe_returncode
from meshkit.tls import MeshTls
from services.machineusers.bootstrap import BootstrapError, ensure_admin

__all__ = ["NATS_ADDRESS_VAR", "Startup", "StartupFailed"]

NATS_ADDRESS_VAR = "PLUGMESH_NATS_ADDRESS"


class StartupFailed(Exception):
    """A process did not come up; the message says which and why."""


class _Progress:
    def __init__(self, out: TextIO, total: int) -> None:
        self._out = out
        self._total = total
        self._step = 0
        self._started = time.monotonic()

    def done(self, name: str, outcome: str) -> None:
        self._step += 1
        elapsed = time.monotonic() - self._started
        print(f"[{self._step}/{self._total}] {name} … {outcome} ({elapsed:.1f}s)", file=self._out)
        self._out.flush()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join("    " + line for line in text.splitlines()[-lines:])


def _exited(child: Child, log_path: Path) -> StartupFailed:
    code = child.last_returncode
    how = describe_returncode(code) if code is not None else "exited"
    tail = _tail(log_path)
    return StartupFailed(
        f"{child.name} {how} while starting; its log is {log_path}"
        + (f", ending with:\n{tail}" if tail else "")
    )


async def _wait_listening(
    child: Child, address: str, log_path: Path, timeout_seconds: float
) -> None:
    host, port = split_address(address)
    deadline = time.monotonic() + timeout_seconds
    while True:
        if child.exits:
            raise _exited(child, log_path)
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"{child.name} did not listen on {address} within {timeout_seconds:.0f}s; "
                    f"its log is {log_path}"
                ) from None
            await asyncio.sleep(0.05)
        else:
            writer.close()
            await writer.wait_closed()
            return


async def _all_or_none(steps: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run ``steps`` together; the first to fail cancels the others and is raised."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    for task in done:
        error = task.exception()
        if error is not None:
            raise error


def _member_tls(certificates: MeshCertificates | None, name: str) -> MeshTls | None:
    if certificates is None:
        return None
    files = certificates.files_of(name)
    return MeshTls(files.cert_file, files.key_file, files.ca_file)


class Startup:
    """Starts the mesh's processes under ``supervisor``, in order, and reports on ``out``.

    Args:
        data_dir: Holds ``logs/``, the JetStream store and ``admin.token``.
        supervisor: Runs the processes.
        out: Where the progress and the summary go.
        timeout_seconds: How long each step may take.
        certificates: The processes' certificates, with mutual TLS on; ``None`` runs
            the mesh in plaintext.
    """

    def __init__(
        self,
        data_dir: Path,
        supervisor: Supervisor,
        out: TextIO,
        *,
        timeout_seconds: float,
        certificates: MeshCertificates | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.certificates = certificates
        self._tls = _member_tls(certificates, LAUNCHER_IDENTITY)
        self.supervisor = supervisor
        self.out = out
        self.timeout_seconds = timeout_seconds
        self.logs = data_dir / "logs"

    def log_path(self, name: str) -> Path:
        """Where process ``name`` writes its log."""
        return self.logs / f"{name}.log"

    async def start(
        self, env: Mapping[str, str], addresses: Mapping[str, str], *, embedded_nats: bool
    ) -> int:
        """Start NATS (when ``embedded_nats``), the registry, then the others; wait until
        every one is SERVING; make the first admin. Return the exit code: 0 when up."""
        progress = _Progress(self.out, len(PROCESSES) + (1 if embedded_nats else 0))
        try:
            if embedded_nats:
                await self._start_nats(addresses[NATS_ADDRESS_VAR], progress)
            registry, *others = PROCESSES
            await self._start_process(registry, env, progress)
            await _all_or_none([self._start_process(p, env, progress) for p in others])
        except (StartupFailed, NatsServerError, OSError) as exc:
            print(f"plugmesh: {exc}", file=sys.stderr)
            return 1
        print("waiting until the registry reports every process SERVING …", file=self.out)
        names = [p.name for p in PROCESSES]
        registry_address = addresses[registry.grpc_address_var]
        try:
            view = await wait_until_serving(
                registry_address,
                names,
                timeout_seconds=self.timeout_seconds,
                check=self._no_exits,
                secret=env.get("PLUGMESH_REGISTRATION_SECRET"),
                tls=self._tls,
            )
            self._no_exits()
        except (RegistryUnreachable, StartupFailed) as exc:
            print(f"plugmesh: {exc}", file=sys.stderr)
            return 1
        print(render_table(STATUS_HEADERS, status_rows(view)), file=self.out)
        late = view.not_serving(names)
        if late:
            print(f"plugmesh: not SERVING yet: {', '.join(late)}", file=sys.stderr)
        try:
            admin = await ensure_admin(
                self.data_dir,
                env[process_named("machine-users").grpc_address_var],
                env["PLUGMESH_REGISTRATION_SECRET"],
                tls=self._tls,
            )
        except BootstrapError as exc:
            print(f"plugmesh: {exc}", file=sys.stderr)
            return 1
        gateway_http = addresses.get("PLUGMESH_GATEWAY_HTTP_ADDRESS")
        scheme = "https" if env.get("PLUGMESH_GATEWAY_TLS_CERT_FILE") else "http"
        print(f"\nHTTP/JSON gateway: {scheme}://{gateway_http}", file=self.out)
        print(
            f"console: {scheme}://{gateway_http}/console (sign in with the admin token)",
            file=self.out,
        )
        if admin.created:
            print(f"admin token (shown once; kept in {admin.path}): {admin.token}", file=self.out)
        else:
            print(f"admin token: {admin.path}", file=self.out)
        print(
            f'  curl -H "Authorization: Bearer $(cat {admin.path})" {scheme}://{gateway_http}/v1/users',
            file=self.out,
        )
        print(f"NATS: {redact_url(env['PLUGMESH_NATS_URL'])}", file=self.out)
        if self.certificates is not None:
            print(
                f"internal gRPC and NATS: mutual TLS, CA and certificates in"
                f" {self.certificates.directory}",
                file=self.out,
            )
        print(f"logs: {self.logs}/<process>.log — Ctrl-C stops the mesh", file=self.out)
        self.out.flush()
        return 0

    def _no_exits(self) -> None:
        """Until the mesh is up, a process that exits is a failed start."""
        for child in self.supervisor.children:
            if child.exits:
                raise _exited(child, self.log_path(child.name))

    async def _start_nats(self, address: str, progress: _Progress) -> None:
        host, port = split_address(address)
        store = self.data_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        tls = _member_tls(self.certificates, "nats")
        spec = ChildSpec(
            "nats",
            nats_command(store, host=host, port=port, tls=tls),
            log_path=self.log_path("nats"),
        )
        (child,) = await self.supervisor.start(spec)
        try:
            await wait_until_accepting(
                host,
                port,
                timeout_seconds=self.timeout_seconds,
                alive=lambda: child.exits == 0,
            )
        except NatsServerError:
            if child.exits:
                raise _exited(child, self.log_path("nats")) from None
            raise
        progress.done("nats", f"up (nats://{address}, JetStream)")

    async def _start_process(
        self, process: ProcessSpec, env: Mapping[str, str], progress: _Progress
    ) -> None:
        if self.certificates is not None:
            env = {**env, **self.certificates.env_for(process.name)}
        spec = ChildSpec(
            process.name,
            (sys.executable, "-m", process.module),
            env=env,
            log_path=self.log_path(process.name),
        )
        (child,) = await self.supervisor.start(spec)
        address = env[process.grpc_address_var]
        log_path = self.log_path(process.name)
        await _wait_listening(child, address, log_path, self.timeout_seconds)
        shown = ", ".join(env[var] for var in process.address_vars[:-1])
        shown += f", metrics http://{env[process.metrics_address_var]}/metrics"
        progress.done(process.name, f"up ({shown})")
