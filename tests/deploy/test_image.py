"""The Dockerfile builds one image that runs any process as ``plugmesh serve <name>``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from launcher.addresses import split_address
from launcher.processes import ENVIRONMENT, PROCESSES
from tests.deploy.files import (
    DOCKERFILE,
    DOCKERIGNORE,
    PROCESS_NAMES,
    ROOT,
    plugmesh_args,
)

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    joined = DOCKERFILE.read_text().replace("\\\n", " ")
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage, the ARGs before the first FROM dropped."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def base_image(reference: str) -> str:
    args = dict(rest.split("=", 1) for kw, rest in instructions() if kw == "ARG" and "=" in rest)
    image = reference.split()[0]
    return args.get(image.strip("${}"), image) if image.startswith("$") else image


def test_the_image_is_built_in_stages_on_slim_python_3_11() -> None:
    froms = [rest for stage in stages() for kw, rest in stage if kw == "FROM"]
    assert len(froms) >= 2
    for reference in froms:
        assert base_image(reference).startswith("python:3.11-slim"), reference


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = [rest for kw, rest in stages()[-1] if kw == "USER"]
    assert users, "the last stage sets no USER"
    assert users[-1].split(":")[0] not in ("root", "0")


def test_the_entrypoint_is_the_plugmesh_command_and_the_cmd_one_of_its_processes() -> None:
    final = dict(stages()[-1])
    entrypoint, cmd = json.loads(final["ENTRYPOINT"]), json.loads(final["CMD"])
    assert entrypoint == ["plugmesh"]
    assert PYPROJECT["project"]["scripts"]["plugmesh"] == "launcher.cli:main"
    args = plugmesh_args(cmd)
    assert (args.command, args.name) == ("serve", "gateway")
    assert args.name in PROCESS_NAMES


def test_the_installed_plugmesh_command_serves_and_checks_health() -> None:
    plugmesh = Path(sys.executable).parent / "plugmesh"
    done = subprocess.run(
        [str(plugmesh), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "serve" in done.stdout
    assert "health" in done.stdout


def test_the_image_installs_the_locked_packages_then_the_project_with_its_postgres_driver() -> None:
    runs = [rest for kw, rest in stages()[0] if kw == "RUN"]
    locked = next(i for i, run in enumerate(runs) if "-r requirements/runtime.txt" in run)
    assert "--require-hashes" in runs[locked]
    project = next(i for i, run in enumerate(runs) if '".[postgres]"' in run)
    assert locked < project
    assert "--no-deps" in runs[project], "the project's dependencies come from the lock only"
    assert "postgres" in PYPROJECT["project"]["optional-dependencies"]
    pinned = (ROOT / "requirements" / "runtime.txt").read_text()
    assert re.search(r"^psycopg-binary==", pinned, re.M)


def copied_sources() -> set[str]:
    sources = set()
    for kw, rest in instructions():
        if kw == "COPY" and not rest.startswith("--from"):
            sources.update(rest.split()[:-1])
    return sources


def test_the_build_copies_every_package_and_what_pyproject_reads() -> None:
    found = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    needed = {"pyproject.toml", PYPROJECT["project"]["readme"]}
    for pattern in found["include"]:
        top = pattern.rstrip("*")
        where = [w for w in found["where"] if (ROOT / w / top).is_dir()]
        assert where, f"no package {top} under {found['where']}"
        needed.add(top if where[0] == "." else where[0])
    assert needed <= copied_sources()


def test_the_build_context_holds_what_the_build_copies_and_no_secrets() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", ".dockerignore should list what goes in, not what stays out"
    included = {line[1:] for line in lines if line.startswith("!")}
    assert copied_sources() <= included
    assert not included & {".env", ".venv", ".git", ".plugmesh", "tests"}


def test_generated_code_is_committed_so_the_build_needs_no_protoc() -> None:
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "gen"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert any(name.endswith("_pb2.py") for name in tracked)


def documented_commands() -> list[list[str]]:
    """``plugmesh …`` run in the code blocks of the READMEs (in a container or a venv)."""
    found = []
    for readme in (ROOT / "README.md", ROOT / "deploy" / "README.md"):
        for block in re.findall(r"```[a-z]*\n(.*?)```", readme.read_text(), re.S):
            for line in block.splitlines():
                command = line.split(" #")[0]
                for match in re.finditer(r"(?:^|exec \S+ |-- |bin/)plugmesh ([\w -]+)", command):
                    found.append(match[1].split())
    return found


def test_the_readmes_run_only_real_plugmesh_commands() -> None:
    commands = documented_commands()
    assert ["admin-token"] in commands
    for argv in commands:
        plugmesh_args(argv)


def test_the_image_exposes_the_default_port_of_every_address() -> None:
    defaults = {v.name: v.default for v in ENVIRONMENT}
    wanted = {
        split_address(defaults[variable])[1] for spec in PROCESSES for variable in spec.address_vars
    }
    exposed = {int(port) for kw, rest in stages()[-1] if kw == "EXPOSE" for port in rest.split()}
    assert wanted <= exposed
