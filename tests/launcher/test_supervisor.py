from __future__ import annotations

import asyncio
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from launcher.supervisor import (
    Child,
    ChildExit,
    ChildSpec,
    ChildStatus,
    RestartPolicy,
    Supervisor,
    describe_returncode,
)
from tests.launcher.helpers import pid_alive
from tests.support.waiting import until

QUICK = RestartPolicy(
    initial_backoff_seconds=0.05,
    max_backoff_seconds=0.4,
    multiplier=2.0,
    reset_after_seconds=60.0,
)


def python(script: str, *args: str) -> tuple[str, ...]:
    """The command line of a tiny fake child program."""
    return (sys.executable, "-c", textwrap.dedent(script), *args)


# Writes its pid to argv[1] once its SIGTERM handling is in place, then waits.
_READY = """
import os, sys, time
def ready():
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


class Recorder:
    """A SupervisorListener that remembers what it was told."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.exits: list[ChildExit] = []

    def child_started(self, child: Child) -> None:
        assert child.pid is not None
        self.started.append(child.pid)

    def child_exited(self, child: Child, exit: ChildExit) -> None:
        self.exits.append(exit)


async def test_a_crashing_child_is_restarted_with_exponential_backoff() -> None:
    recorder = Recorder()
    async with Supervisor(policy=QUICK, grace_seconds=1.0, listener=recorder) as supervisor:
        (child,) = await supervisor.start(ChildSpec("crasher", python("raise SystemExit(3)")))
        await until(lambda: len(recorder.exits) >= 5, what="five crashes")

    delays = [exit.restart_in_seconds for exit in recorder.exits[:5]]
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert {exit.returncode for exit in recorder.exits} == {3}
    assert len(set(recorder.started)) == len(recorder.started) >= 5
    assert child.restarts >= 4
    assert child.status is ChildStatus.STOPPED


async def test_backoff_starts_over_once_a_child_stayed_up_long_enough() -> None:
    policy = RestartPolicy(initial_backoff_seconds=0.05, reset_after_seconds=0.2)
    recorder = Recorder()
    async with Supervisor(policy=policy, grace_seconds=1.0, listener=recorder) as supervisor:
        script = "import time; time.sleep(0.3); raise SystemExit(1)"
        await supervisor.start(ChildSpec("slow-crasher", python(script)))
        await until(lambda: len(recorder.exits) >= 3, what="three crashes")

    assert [exit.restart_in_seconds for exit in recorder.exits[:3]] == [0.05, 0.05, 0.05]


async def test_stop_sends_sigterm_first(tmp_path: Path) -> None:
    ready, said = tmp_path / "ready", tmp_path / "said"
    script = (
        _READY
        + f"""
import asyncio
import signal
def on_term(signum, frame):
    open({str(said)!r}, "w").write("TERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
ready()
while True:
    time.sleep(1)
"""
    )
    async with Supervisor(policy=QUICK, grace_seconds=5.0) as supervisor:
        (child,) = await supervisor.start(ChildSpec("polite", python(script, str(ready))))
        await until(ready.exists, what="the child to be ready")
        pid = child.pid
        await supervisor.stop()

    assert said.read_text() == "TERM"
    assert child.last_returncode == 0
    assert child.exits == 0, "a stopped child is not an exit to restart after"
    assert pid is not None
    assert not pid_alive(pid)


async def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = (
        _READY
        + """
import asyncio
import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
ready()
while True:
    time.sleep(1)
"""
    )
    async with Supervisor(policy=QUICK, grace_seconds=0.3) as supervisor:
        (child,) = await supervisor.start(ChildSpec("stubborn", python(script, str(ready))))
        await until(ready.exists, what="the child to be ready")
        pid = child.pid

    assert child.last_returncode == -signal.SIGKILL
    assert pid is not None
    assert not pid_alive(pid)


async def test_stop_kills_what_a_child_left_behind_in_its_process_group(tmp_path: Path) -> None:
    ready, orphan = tmp_path / "ready", tmp_path / "orphan"
    grandchild = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    )
    script = (
        _READY
        + f"""
import subprocess
p = subprocess.Popen([sys.executable, "-c", {grandchild!r}])
open({str(orphan)!r}, "w").write(str(p.pid))
ready()
while True:
    time.sleep(1)
"""
    )
    async with Supervisor(policy=QUICK, grace_seconds=5.0) as supervisor:
        await supervisor.start(ChildSpec("parent", python(script, str(ready))))
        await until(ready.exists, what="the child to be ready")
        grandchild_pid = int(orphan.read_text())
        assert pid_alive(grandchild_pid)

    await until(lambda: not pid_alive(grandchild_pid), timeout_seconds=5, what="the grandchild")


async def test_batches_stop_in_reverse_start_order(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    script = (
        _READY
        + f"""
import asyncio
import signal
def on_term(signum, frame):
    time.sleep(0.1)
    with open({str(journal)!r}, "a") as f:
        f.write(sys.argv[2] + "\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
ready()
while True:
    time.sleep(1)
"""
    )

    def spec(name: str) -> ChildSpec:
        return ChildSpec(name, python(script, str(tmp_path / name), name))

    async with Supervisor(policy=QUICK, grace_seconds=5.0) as supervisor:
        await supervisor.start(spec("nats"))
        await supervisor.start(spec("registry"))
        await supervisor.start(spec("users"), spec("audit"))
        for name in ("nats", "registry", "users", "audit"):
            await until((tmp_path / name).exists, what=f"{name} to be ready")

    order = journal.read_text().split()
    assert set(order[:2]) == {"users", "audit"}
    assert order[2:] == ["registry", "nats"]


async def test_killed_children_are_not_restarted() -> None:
    recorder = Recorder()
    supervisor = Supervisor(policy=QUICK, grace_seconds=1.0, listener=recorder)
    children = await supervisor.start(
        ChildSpec("a", python("import time; time.sleep(60)")),
        ChildSpec("b", python("import time; time.sleep(60)")),
    )
    pids = [child.pid for child in children]

    supervisor.kill()
    # Once a child's death is seen it is either an exit to restart after or not.
    await until(
        lambda: all(child.last_returncode is not None for child in children),
        what="both deaths seen by the supervisor",
    )
    await supervisor.stop()

    assert recorder.exits == []
    assert [child.restarts for child in children] == [0, 0]
    assert [child.last_returncode for child in children] == [-signal.SIGKILL] * 2
    assert not any(pid_alive(pid) for pid in pids if pid is not None)


async def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "talker.log"
    script = "import sys; print('to stdout'); print('to stderr', file=sys.stderr)"
    recorder = Recorder()
    async with Supervisor(policy=QUICK, grace_seconds=1.0, listener=recorder) as supervisor:
        await supervisor.start(ChildSpec("talker", python(script), log_path=log))
        await until(lambda: len(recorder.exits) >= 2, what="two runs")

    lines = log.read_text().splitlines()
    assert lines.count("to stdout") >= 2
    assert lines.count("to stderr") >= 2


async def test_stop_is_safe_to_call_twice() -> None:
    supervisor = Supervisor(policy=QUICK, grace_seconds=1.0)
    (child,) = await supervisor.start(ChildSpec("sleeper", python("import time; time.sleep(60)")))

    await supervisor.stop()
    await supervisor.stop()

    assert child.status is ChildStatus.STOPPED
    with pytest.raises(RuntimeError, match="stopping"):
        await supervisor.start(ChildSpec("late", python("pass")))


async def test_a_program_that_does_not_exist_fails_to_start(tmp_path: Path) -> None:
    async with Supervisor(policy=QUICK) as supervisor:
        with pytest.raises(FileNotFoundError):
            await supervisor.start(ChildSpec("ghost", (str(tmp_path / "missing"),)))


@pytest.mark.parametrize(
    ("returncode", "described"),
    [
        pytest.param(0, "exited with code 0", id="clean"),
        pytest.param(3, "exited with code 3", id="error"),
        pytest.param(-9, "killed by SIGKILL", id="sigkill"),
        pytest.param(-15, "killed by SIGTERM", id="sigterm"),
    ],
)
def test_exits_are_described_for_people(returncode: int, described: str) -> None:
    assert describe_returncode(returncode) == described


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux-only")
async def test_children_do_not_outlive_a_supervisor_killed_with_sigkill(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    child = python(_READY + "ready()\nwhile True:\n    time.sleep(1)\n", str(ready))
    supervisor_script = f"""
import asyncio
from launcher.supervisor import ChildSpec, Supervisor
async def main():
    supervisor = Supervisor()
    await supervisor.start(ChildSpec("orphan", {child!r}))
    await asyncio.sleep(60)
asyncio.run(main())
"""
    process = await asyncio.create_subprocess_exec(*python(supervisor_script))
    try:
        await until(ready.exists, what="the child to be ready")
        child_pid = int(ready.read_text())
        assert pid_alive(child_pid)
    finally:
        process.kill()
        await process.wait()

    await until(lambda: not pid_alive(child_pid), timeout_seconds=5, what="the orphan to exit")
