"""``plugmesh up``: the whole mesh on one machine, supervised.

The processes start in order (:mod:`launcher.startup`) and run until Ctrl-C or SIGTERM;
shutdown goes in reverse. While it runs, ``<data dir>/up.json`` (:mod:`launcher.state`)
holds the concrete addresses and the children's pids.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from launcher.addresses import AddressUnavailable, resolve_ports
from launcher.certs import MEMBER_LIFETIME, TLS_DIR, MeshCertificates
from launcher.processes import NATS, PROCESSES
from launcher.startup import NATS_ADDRESS_VAR, Startup
from launcher.state import SECRET_FILE, STATE_FILE, UpState, load_or_create_secret, read_state
from launcher.supervisor import Supervisor
from meshkit.config import DEFAULT_NATS_ADDRESS, ConfigError, env_number
from meshkit.tasks import cancel_and_wait

#: ``off`` runs ``plugmesh up``'s mesh in plaintext.
MESH_TLS_VAR = "PLUGMESH_MESH_TLS"
#: How long the certificates ``plugmesh up`` issues live.
LIFETIME_VAR = "PLUGMESH_MESH_TLS_CERT_LIFETIME_SECONDS"

log = logging.getLogger(__name__)


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
    mesh_tls: bool = True
    """Mutual TLS between the processes, with a CA and certificates made in the data dir."""
    certificate_lifetime_seconds: float = MEMBER_LIFETIME.total_seconds()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], *, data_dir: str | None = None, verbose: bool = False
    ) -> UpSettings:
        """Read the settings; ``data_dir`` (the flag) wins over ``PLUGMESH_DATA_DIR``."""
        variables = [var for spec in PROCESSES for var in spec.listen]
        variables += [spec.metrics for spec in PROCESSES]
        addresses = {var.name: env.get(var.name) or var.default for var in variables}
        nats_url = env.get("PLUGMESH_NATS_URL") or None
        if nats_url is None:
            addresses[NATS_ADDRESS_VAR] = env.get(NATS_ADDRESS_VAR) or DEFAULT_NATS_ADDRESS
        mesh_tls = (env.get(MESH_TLS_VAR) or "on").strip().lower()
        if mesh_tls not in ("on", "off"):
            raise ConfigError(f"{MESH_TLS_VAR} must be on or off, got {mesh_tls!r}")
        return cls(
            mesh_tls=mesh_tls == "on",
            certificate_lifetime_seconds=env_number(
                env,
                LIFETIME_VAR,
                MEMBER_LIFETIME.total_seconds(),
                positive=True,
                unit="a number of seconds",
            ),
            data_dir=Path(data_dir or env.get("PLUGMESH_DATA_DIR") or ".plugmesh").absolute(),
            nats_url=nats_url,
            addresses=addresses,
            registration_secret=env.get("PLUGMESH_REGISTRATION_SECRET") or None,
            environ=dict(env),
            verbose=verbose,
        )


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
    env = {k: v for k, v in settings.environ.items() if not k.startswith("PLUGMESH_TLS_")}
    env.update(addresses)
    env["PLUGMESH_DATA_DIR"] = str(settings.data_dir)
    env["PLUGMESH_NATS_URL"] = settings.nats_url or f"nats://{addresses[NATS_ADDRESS_VAR]}"
    env["PLUGMESH_REGISTRATION_SECRET"] = secret
    env["PYTHONUNBUFFERED"] = "1"
    if settings.nats_url and not env.get("PLUGMESH_NATS_TLS"):
        # An external NATS knows nothing of the mesh CA made here.
        env["PLUGMESH_NATS_TLS"] = "off"
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


async def _run_until_signal(start: Coroutine[Any, Any, int], stop: asyncio.Event) -> int:
    starting = asyncio.create_task(start, name="start mesh")
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


def _certificates(settings: UpSettings) -> MeshCertificates | None:
    """The CA and the processes' certificates in the data dir, issued or renewed now;
    ``None`` with mutual TLS off."""
    if not settings.mesh_tls:
        return None
    certificates = MeshCertificates(
        settings.data_dir / TLS_DIR,
        (NATS, *(spec.name for spec in PROCESSES)),
        lifetime=datetime.timedelta(seconds=settings.certificate_lifetime_seconds),
    )
    certificates.renew_due()
    return certificates


async def _renew_forever(
    certificates: MeshCertificates, settings: UpSettings, supervisor: Supervisor
) -> None:
    """Renew each certificate after two thirds of its lifetime: the gRPC servers serve
    the new files from their next handshake on, new channels present them, and the
    embedded nats-server reads them again on SIGHUP (its configuration reload)."""
    interval = min(60.0, settings.certificate_lifetime_seconds / 10)
    while True:
        await asyncio.sleep(interval)
        renewed = await asyncio.to_thread(certificates.renew_due)
        if not renewed:
            continue
        log.info("certificates renewed", extra={"processes": renewed})
        if NATS in renewed:
            for child in supervisor.children:
                if child.name == NATS and child.pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child.pid, signal.SIGHUP)


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
    certificates = _certificates(settings)
    state = UpState(
        data_dir / STATE_FILE,
        addresses,
        env["PLUGMESH_NATS_URL"],
        mesh_tls=certificates is not None,
    )
    stop = asyncio.Event()
    supervisor = Supervisor(grace_seconds=settings.grace_seconds, listener=state)
    mesh = Startup(
        data_dir,
        supervisor,
        out,
        timeout_seconds=settings.start_timeout_seconds,
        certificates=certificates,
    )
    renewing = (
        asyncio.create_task(
            _renew_forever(certificates, settings, supervisor), name="renew certificates"
        )
        if certificates is not None
        else None
    )

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
                start = mesh.start(env, addresses, embedded_nats=settings.nats_url is None)
                code = await _run_until_signal(start, stop)
            finally:
                await supervisor.stop()
    finally:
        await cancel_and_wait(renewing)
        state.remove()
        if echo is not None and echoing is not None:
            echoing.cancel()
            await asyncio.wait([echoing])
            echo.poll()
    print("plugmesh: stopped", file=out, flush=True)
    return code
