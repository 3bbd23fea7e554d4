"""Starting, restarting and stopping child processes.

A :class:`Supervisor` starts children in batches (``await supervisor.start(spec, ...)``).
Each child runs in its own session, so a Ctrl-C on the terminal reaches only the
supervisor, which then stops the children in order; on Linux a child also gets SIGTERM
when the supervisor dies without stopping it. A child that exits is started again
after an exponential backoff, which resets once the child has stayed up for
:attr:`RestartPolicy.reset_after_seconds`.

:meth:`Supervisor.stop` stops the batches in reverse start order, the children of one
batch together: SIGTERM, a grace period, then SIGKILL to whatever is left of the child's
process group. It is safe to call twice; :meth:`Supervisor.kill` skips the grace period.

Child lifecycle (:class:`ChildStatus`)::

    NEW ──start()──▶ RUNNING ──exits──▶ BACKOFF ──delay──▶ RUNNING …
                        │                  │
                        └───── stop() ─────┴──▶ STOPPING ──▶ STOPPED
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import os
import shutil
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Protocol

__all__ = [
    "Child",
    "ChildExit",
    "ChildSpec",
    "ChildStatus",
    "RestartPolicy",
    "Supervisor",
    "SupervisorListener",
    "describe_returncode",
    "terminate",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChildSpec:
    """How to run one child.

    Attributes:
        name: Name used in logs.
        argv: Program and arguments.
        env: The child's whole environment; ``None`` inherits the supervisor's.
        log_path: File that receives the child's stdout and stderr (appended); ``None``
            leaves them on the supervisor's own.
        cwd: Working directory; ``None`` keeps the supervisor's.
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str] | None = None
    log_path: Path | None = None
    cwd: Path | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts of a child that exited."""

    initial_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    multiplier: float = 2.0
    reset_after_seconds: float = 30.0

    def delay_seconds(self, failures: int) -> float:
        """The delay before the restart that follows ``failures`` quick exits in a row."""
        delay: float = self.initial_backoff_seconds * self.multiplier**failures
        return min(delay, self.max_backoff_seconds)


class ChildStatus(enum.Enum):
    """Where a child is in its lifecycle."""

    NEW = "new"
    RUNNING = "running"
    BACKOFF = "backoff"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ChildExit:
    """A child exited on its own (not because it was stopped)."""

    pid: int
    returncode: int
    uptime_seconds: float
    restart_in_seconds: float


class SupervisorListener(Protocol):
    """Told about every start and every unexpected exit of a child."""

    def child_started(self, child: Child) -> None:
        """``child`` has just been started (or restarted); ``child.pid`` is its pid."""

    def child_exited(self, child: Child, exit: ChildExit) -> None:
        """``child`` exited on its own and will be restarted after a delay."""


def describe_returncode(returncode: int) -> str:
    """Say how a process ended: ``"exited with code 3"``, ``"killed by SIGKILL"``."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


# On Linux each child is started through this trampoline, which asks the kernel to send
# it SIGTERM when the supervisor dies (even by SIGKILL), so no child outlives it; the
# setting survives the exec. argv: supervisor pid, then the child's own argv.
_TRAMPOLINE = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]): os._exit(1)  # the supervisor is already gone\n"
    "os.execv(sys.argv[2], sys.argv[2:])\n"
)


def _command(argv: Sequence[str]) -> list[str]:
    program = shutil.which(argv[0])
    if program is None:
        raise FileNotFoundError(errno.ENOENT, "no such program", argv[0])
    if sys.platform != "linux":
        return [program, *argv[1:]]
    return [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, str(os.getpid()), program, *argv[1:]]


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    # The group outlives its leader when the leader left children behind.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def terminate(
    process: asyncio.subprocess.Process, grace_seconds: float, name: str = "child"
) -> int:
    """Stop a process started in its own session and return its exit code.

    SIGTERM to the process; after ``grace_seconds`` SIGKILL to its process group; once
    it has exited, SIGKILL to anything left in its group.
    """
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), grace_seconds)
        except TimeoutError:
            log.warning("%s did not stop within %.1fs of SIGTERM; killing it", name, grace_seconds)
            _signal_group(process.pid, signal.SIGKILL)
            await process.wait()
    _signal_group(process.pid, signal.SIGKILL)
    assert process.returncode is not None
    return process.returncode


class Child:
    """One supervised child process; created by :meth:`Supervisor.start`."""

    def __init__(
        self, spec: ChildSpec, policy: RestartPolicy, listener: SupervisorListener | None
    ) -> None:
        self.spec = spec
        self.status = ChildStatus.NEW
        #: How many times the child exited on its own.
        self.exits = 0
        #: How many times it was started again after exiting.
        self.restarts = 0
        self.last_returncode: int | None = None
        self._policy = policy
        self._listener = listener
        self._process: asyncio.subprocess.Process | None = None
        self._started_at = 0.0
        self._monitor: asyncio.Task[None] | None = None
        self._stopping: asyncio.Future[None] | None = None
        self._halted = False

    @property
    def name(self) -> str:
        """The child's name."""
        return self.spec.name

    @property
    def pid(self) -> int | None:
        """The pid of the running process, ``None`` between runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the process and watch it. Raises ``OSError`` when it cannot be started."""
        if self._monitor is not None or self._stopping is not None:
            return
        await self._spawn()
        self._monitor = asyncio.create_task(self._watch(), name=f"supervise {self.name}")

    async def stop(self, grace_seconds: float) -> None:
        """Stop restarting it, then SIGTERM, grace, SIGKILL. Safe to call twice."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop(grace_seconds))
        await asyncio.shield(self._stopping)

    def halt(self) -> None:
        """Restart it no more: it is about to be stopped."""
        self._halted = True

    def kill(self) -> None:
        """SIGKILL the process group now, for good; :meth:`stop` still has to be awaited."""
        self._halted = True
        if self._process is not None and self._process.returncode is None:
            _signal_group(self._process.pid, signal.SIGKILL)

    async def _stop(self, grace_seconds: float) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            monitor.cancel()
            await asyncio.wait([monitor])
            if not monitor.cancelled() and monitor.exception() is not None:
                log.error("supervising %s failed", self.name, exc_info=monitor.exception())
        self.status = ChildStatus.STOPPING
        process = self._process
        if process is not None:
            self.last_returncode = await terminate(process, grace_seconds, self.name)
        self.status = ChildStatus.STOPPED

    async def _spawn(self) -> None:
        spec = self.spec
        output: int | None = None
        if spec.log_path is not None:
            spec.log_path.parent.mkdir(parents=True, exist_ok=True)
            output = os.open(spec.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            self._process = await asyncio.create_subprocess_exec(
                *_command(spec.argv),
                env=dict(spec.env) if spec.env is not None else None,
                cwd=spec.cwd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT if output is not None else None,
                start_new_session=True,
            )
        finally:
            if output is not None:
                os.close(output)
        self._started_at = time.monotonic()
        self.status = ChildStatus.RUNNING
        if self.restarts:
            log.info("%s restarted (pid %d)", self.name, self._process.pid)
        else:
            log.debug("%s started (pid %d)", self.name, self._process.pid)
        if self._listener is not None:
            self._listener.child_started(self)

    async def _watch(self) -> None:
        failures = 0
        while True:
            process = self._process
            if process is not None:
                returncode = await process.wait()
                uptime = time.monotonic() - self._started_at
                # Whatever it left behind in its group goes with it.
                _signal_group(process.pid, signal.SIGKILL)
                self._process = None
                self.last_returncode = returncode
                if self._halted:
                    return
                self.exits += 1
                if uptime >= self._policy.reset_after_seconds:
                    failures = 0
                delay = self._policy.delay_seconds(failures)
                log.warning(
                    "%s (pid %d) %s after %.1fs; restarting in %.1fs",
                    self.name,
                    process.pid,
                    describe_returncode(returncode),
                    uptime,
                    delay,
                )
                if self._listener is not None:
                    exit = ChildExit(process.pid, returncode, uptime, delay)
                    self._listener.child_exited(self, exit)
            else:
                delay = self._policy.delay_seconds(failures)
            failures += 1
            self.status = ChildStatus.BACKOFF
            await asyncio.sleep(delay)
            if self._halted:
                return
            self.restarts += 1
            try:
                await self._spawn()
            except OSError as exc:
                log.error("%s could not be started again: %s", self.name, exc)


class Supervisor:
    """Runs children, restarts those that exit, and stops them in reverse start order.

    Use as ``async with Supervisor() as supervisor:``; leaving the block stops everything.

    Args:
        policy: Backoff between restarts.
        grace_seconds: How long a child may take to exit after SIGTERM.
        listener: Told about starts and unexpected exits.
    """

    def __init__(
        self,
        *,
        policy: RestartPolicy | None = None,
        grace_seconds: float = 10.0,
        listener: SupervisorListener | None = None,
    ) -> None:
        self._policy = policy or RestartPolicy()
        self._grace_seconds = grace_seconds
        self._listener = listener
        self._batches: list[list[Child]] = []
        self._stopping: asyncio.Future[None] | None = None

    @property
    def children(self) -> list[Child]:
        """Every child, in start order."""
        return [child for batch in self._batches for child in batch]

    async def start(self, *specs: ChildSpec) -> list[Child]:
        """Start one batch of children; they are stopped together, before earlier batches.

        Raises:
            OSError: A child could not be started (the others of the batch were).
            RuntimeError: The supervisor is stopping.
        """
        if self._stopping is not None:
            raise RuntimeError("the supervisor is stopping")
        batch = [Child(spec, self._policy, self._listener) for spec in specs]
        self._batches.append(batch)
        for child in batch:
            await child.start()
        return batch

    async def stop(self) -> None:
        """Stop every child, the last batch first. Safe to call twice."""
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._stopping)

    def kill(self) -> None:
        """SIGKILL every child now, for a second Ctrl-C; :meth:`stop` still has to run."""
        for child in self.children:
            child.kill()

    async def _stop(self) -> None:
        # Nothing is restarted any more, not even a child of an earlier batch that dies
        # while the later ones stop.
        for child in self.children:
            child.halt()
        for batch in reversed(self._batches):
            await asyncio.gather(*(child.stop(self._grace_seconds) for child in batch))

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
