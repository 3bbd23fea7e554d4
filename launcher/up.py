"""``plugmesh up``: the whole mesh on one machine, supervised.

Order: NATS (unless external), the registry, then the gateway and the plugins together;
each step waits until the process accepts connections, then everything waits until the
registry reports every process SERVING. Then the first admin: an admin machine token in
``<data dir>/admin.token`` (mode 0600), made and printed once on the first start, reused
later (:mod:`services.machineusers.bootstrap`). Shutdown (Ctrl-C, SIGTERM) goes in
reverse.

While it runs, ``<data dir>/up.json`` (:mod:`meshkit._cli_state`) holds the concrete
addresses and the children's pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from meshkit._cli_state import (
    SECRET_FILE,
    STATE_FILE,
    UpState,
    load_or_create_secret,
    read_state,
    redact_url,
)
from meshkit._cli_status import (
    STATUS_HEADERS,
    RegistryUnreachable,
    render_table,
    status_rows,
    wait_until_serving,
)
from meshkit.config import (
    DEFAULT_ADDRESSES,
    DEFAULT_METRICS_ADDRESSES,
    DEFAULT_NATS_ADDRESS,
    address_variable,
    metrics_variable,
)
from meshkit.natsd import NatsServerError, nats_command, wait_until_accepting
from meshkit.processes import (
    PROCESSES,
    AddressUnavailable,
    ProcessSpec,
    resolve_ports,
    split_address,
)
from meshkit.supervisor import Child, ChildSpec, Supervisor, describe_returncode
from services.machineusers.bootstrap import BootstrapError, ensure_admin

NATS_ADDRESS_VAR = "PLUGMESH_NATS_ADDRESS"


@dataclass(frozen=True)
class UpSettings:
    """What ``plugmesh up`` runs with, read once from the environment and the flags."""

    data_dir: Path
    nats_url: str | None
    addresses: Mapping[str, str]
    registration_secret: str | None
    environ: Mapping[str, str]
    verbose: bool = False
    start_timeout_seconds: float = 60.0
    grace_seconds: float = 10.0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, data_dir: str | None = None, verbose: bool = False
    ) -> UpSettings:
        """Read the settings; ``data_dir`` (the flag) wins over ``PLUGMESH_DATA_DIR``."""
        addresses = {
            address_variable(name): env.get(address_variable(name)) or default
            for name, default in DEFAULT_ADDRESSES.items()
        }
        addresses.update(
            (metrics_variable(name), env.get(metrics_variable(name)) or default)
            for name, default in DEFAULT_METRICS_ADDRESSES.items()
        )
        nats_url = env.get("PLUGMESH_NATS_URL") or None
        if nats_url is None:
            addresses[NATS_ADDRESS_VAR] = env.get(NATS_ADDRESS_VAR) or DEFAULT_NATS_ADDRESS
        return cls(
            data_dir=Path(data_dir or env.get("PLUGMESH_DATA_DIR") or ".plugmesh").absolute(),
            nats_url=nats_url,
            addresses=addresses,
            registration_secret=env.get("PLUGMESH_REGISTRATION_SECRET") or None,
            environ=dict(env),
            verbose=verbose,
        )


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


class _Mesh:
    """One run of ``plugmesh up``."""

    def __init__(self, settings: UpSettings, supervisor: Supervisor, out: TextIO) -> None:
        self.settings = settings
        self.supervisor = supervisor
        self.out = out
        self.logs = settings.data_dir / "logs"

    def log_path(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    async def start(self, env: Mapping[str, str], addresses: Mapping[str, str]) -> int:
        s = self.settings
        embedded = s.nats_url is None
        progress = _Progress(self.out, len(PROCESSES) + (1 if embedded else 0))
        try:
            if embedded:
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
                timeout_seconds=s.start_timeout_seconds,
                check=self._no_exits,
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
                s.data_dir,
                env[address_variable("machine-users")],
                env["PLUGMESH_REGISTRATION_SECRET"],
            )
        except BootstrapError as exc:
            print(f"plugmesh: {exc}", file=sys.stderr)
            return 1
        gateway_http = addresses.get("PLUGMESH_GATEWAY_HTTP_ADDRESS")
        print(f"\nHTTP/JSON gateway: http://{gateway_http}", file=self.out)
        if admin.created:
            print(f"admin token (shown once; kept in {admin.path}): {admin.token}", file=self.out)
        else:
            print(f"admin token: {admin.path}", file=self.out)
        print(
            f'  curl -H "Authorization: Bearer $(cat {admin.path})" http://{gateway_http}/v1/users',
            file=self.out,
        )
        print(f"NATS: {redact_url(env['PLUGMESH_NATS_URL'])}", file=self.out)
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
        store = self.settings.data_dir / "jetstream"
        store.mkdir(parents=True, exist_ok=True)
        spec = ChildSpec(
            "nats", nats_command(store, host=host, port=port), log_path=self.log_path("nats")
        )
        (child,) = await self.supervisor.start(spec)
        try:
            await wait_until_accepting(
                host,
                port,
                timeout_seconds=self.settings.start_timeout_seconds,
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
        spec = ChildSpec(
            process.name,
            (sys.executable, "-m", process.module),
            env=env,
            log_path=self.log_path(process.name),
        )
        (child,) = await self.supervisor.start(spec)
        address = env[process.grpc_address_var]
        log_path = self.log_path(process.name)
        await _wait_listening(child, address, log_path, self.settings.start_timeout_seconds)
        shown = ", ".join(env[var] for var in process.address_vars[:-1])
        shown += f", metrics http://{env[process.metrics_address_var]}/metrics"
        progress.done(process.name, f"up ({shown})")


@contextlib.contextmanager
def _signal_handlers(handler: Callable[[signal.Signals], None]) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, handler, sig)
    try:
        yield
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def child_env(settings: UpSettings, addresses: Mapping[str, str], secret: str) -> dict[str, str]:
    env = dict(settings.environ)
    env.update(addresses)
    env["PLUGMESH_DATA_DIR"] = str(settings.data_dir)
    env["PLUGMESH_NATS_URL"] = settings.nats_url or f"nats://{addresses[NATS_ADDRESS_VAR]}"
    env["PLUGMESH_REGISTRATION_SECRET"] = secret
    env["PYTHONUNBUFFERED"] = "1"
    return env


class LogEcho:
    """Copies new lines of the children's logs to ``out`` (``--verbose``)."""

    def __init__(self, paths: Mapping[str, Path], out: TextIO) -> None:
        self._paths = paths
        self._out = out
        self._offsets = {name: p.stat().st_size if p.exists() else 0 for name, p in paths.items()}
        self._width = max(len(name) for name in paths)

    def poll(self) -> None:
        """Print every complete line written since the last poll."""
        for name, path in self._paths.items():
            try:
                with path.open("rb") as file:
                    file.seek(self._offsets[name])
                    chunk = file.read()
            except FileNotFoundError:
                continue
            complete = chunk[: chunk.rfind(b"\n") + 1]
            self._offsets[name] += len(complete)
            for line in complete.decode(errors="replace").splitlines():
                print(f"{name:>{self._width}} | {line}", file=self._out)
        self._out.flush()

    async def run(self) -> None:
        """Poll until cancelled."""
        while True:
            self.poll()
            await asyncio.sleep(0.2)


async def _run_until_signal(
    mesh: _Mesh, env: Mapping[str, str], addresses: Mapping[str, str], stop: asyncio.Event
) -> int:
    starting = asyncio.create_task(mesh.start(env, addresses), name="start mesh")
    stopping = asyncio.create_task(stop.wait(), name="wait for a signal")
    try:
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            return 0  # stopped while starting
        code = starting.result()
        if code == 0:
            await stopping
        return code
    finally:
        starting.cancel()
        stopping.cancel()
        await asyncio.wait([starting, stopping])


async def run_up(settings: UpSettings, out: TextIO) -> int:
    """Run the mesh until Ctrl-C or SIGTERM; return the exit code."""
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    running = read_state(data_dir)
    if running is not None:
        print(f"plugmesh: already up in {data_dir} (pid {running['pid']})", file=sys.stderr)
        return 1
    secret = settings.registration_secret or load_or_create_secret(data_dir / SECRET_FILE)
    try:
        addresses = resolve_ports(settings.addresses)
    except AddressUnavailable as exc:
        print(f"plugmesh: {exc}; is another mesh running?", file=sys.stderr)
        print(f"plugmesh: set {exc.variable} (port 0 picks a free port)", file=sys.stderr)
        return 1
    env = child_env(settings, addresses, secret)
    state = UpState(data_dir / STATE_FILE, addresses, env["PLUGMESH_NATS_URL"])
    stop = asyncio.Event()
    supervisor = Supervisor(grace_seconds=settings.grace_seconds, listener=state)
    mesh = _Mesh(settings, supervisor, out)

    def on_signal(sig: signal.Signals) -> None:
        if not stop.is_set():
            print(f"\n{sig.name}: stopping the mesh …", file=out, flush=True)
            stop.set()
        else:
            print(f"{sig.name} again: killing every process", file=out, flush=True)
            supervisor.kill()

    echo: LogEcho | None = None
    echoing: asyncio.Task[None] | None = None
    if settings.verbose:
        names = ["nats", *(p.name for p in PROCESSES)]
        echo = LogEcho({name: mesh.log_path(name) for name in names}, out)
        echoing = asyncio.create_task(echo.run(), name="echo logs")
    try:
        with _signal_handlers(on_signal):
            try:
                code = await _run_until_signal(mesh, env, addresses, stop)
            finally:
                await supervisor.stop()
    finally:
        state.remove()
        if echo is not None and echoing is not None:
            echoing.cancel()
            await asyncio.wait([echoing])
            echo.poll()
    print("plugmesh: stopped", file=out, flush=True)
    return code
