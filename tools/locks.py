"""Write or check the locked requirements in ``requirements/``.

Usage::

    python tools/locks.py --uv .build/uv/bin/uv            # write every lock
    python tools/locks.py --uv ... --upgrade-package grpcio  # bump one package
    python tools/locks.py --uv ... --check                 # fail when a lock is stale

Each lock is ``uv pip compile`` of ``pyproject.toml`` (with ``requirements/build.in``, the build
backend) for one set of extras, universal across platforms, with hashes. ``runtime.txt`` and
``bench.txt`` are compiled with ``dev.txt`` as constraints, so one package has one version in
all of them. A check compiles each lock again into a scratch copy (uv keeps the pins it finds
there unless the inputs demand otherwise) and compares the pins, not the hashes: a registry
may add a wheel to a release that is already locked, and that alone is no drift.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
PYTHON_VERSION = "3.11"


@dataclass(frozen=True)
class Lock:
    """One lock file and what it is compiled from."""

    name: str
    inputs: tuple[str, ...]
    extras: tuple[str, ...] = ()
    constrained_by: str | None = None


ORDER = (
    Lock("uv.txt", ("requirements/uv.in",)),
    Lock("dev.txt", ("pyproject.toml", "requirements/build.in"), ("dev", "postgres")),
    Lock(
        "runtime.txt",
        ("pyproject.toml", "requirements/build.in"),
        ("postgres", "otel"),
        constrained_by="dev.txt",
    ),
    Lock(
        "bench.txt",
        ("pyproject.toml", "requirements/build.in"),
        ("dev", "postgres", "bench"),
        constrained_by="dev.txt",
    ),
)


def compile_lock(uv: str, lock: Lock, output: Path, extra_args: list[str]) -> None:
    """Run ``uv pip compile`` for ``lock`` into ``output``."""
    command = [
        uv,
        "pip",
        "compile",
        "--quiet",
        "--universal",
        "--python-version",
        PYTHON_VERSION,
        "--generate-hashes",
        "--custom-compile-command",
        "make lock",
        "--output-file",
        str(output),
        *lock.inputs,
    ]
    for extra in lock.extras:
        command += ["--extra", extra]
    if lock.constrained_by:
        command += ["--constraint", str(LOCKS / lock.constrained_by)]
    subprocess.run(command + extra_args, cwd=ROOT, check=True)


def pins(text: str) -> list[str]:
    """The ``name==version ; markers`` lines of a lock, without hashes and comments."""
    return [
        line.rstrip(" \\")
        for line in text.splitlines()
        if line and not line[0].isspace() and not line.startswith("#")
    ]


def check(uv: str) -> int:
    """Compile each lock again into a scratch copy; 1 when any pin differs."""
    stale = 0
    with tempfile.TemporaryDirectory() as scratch:
        for lock in ORDER:
            committed = LOCKS / lock.name
            if not committed.exists():
                print(f"requirements/{lock.name} is missing: run `make lock`", file=sys.stderr)
                stale = 1
                continue
            fresh = Path(scratch) / lock.name
            shutil.copy(committed, fresh)
            compile_lock(uv, lock, fresh, [])
            diff = list(
                difflib.unified_diff(
                    pins(committed.read_text()),
                    pins(fresh.read_text()),
                    f"requirements/{lock.name} (committed)",
                    f"requirements/{lock.name} (from pyproject.toml)",
                    lineterm="",
                )
            )
            if diff:
                print("\n".join(diff), file=sys.stderr)
                stale = 1
    if stale:
        print("a lock does not match pyproject.toml: run `make lock`", file=sys.stderr)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uv", required=True, help="the uv executable")
    parser.add_argument("--check", action="store_true", help="fail when a lock is stale")
    args, extra = parser.parse_known_args(argv)
    if args.check:
        return check(args.uv)
    for lock in ORDER:
        compile_lock(args.uv, lock, LOCKS / lock.name, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
