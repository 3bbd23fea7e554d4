"""The deployment files, parsed, and what the deploy tests ask of them.

The checks derive from :data:`launcher.processes.PROCESSES` and ``ENVIRONMENT``, so a
process or variable added there shows up here as a failure naming what is missing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from launcher.addresses import split_address
from launcher.cli import build_parser
from launcher.processes import ENVIRONMENT, PROCESSES, ProcessSpec
from meshkit.config import WILDCARD_HOSTS

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"

#: The plugin that runs in two replicas in compose and on Kubernetes.
REPLICATED = "users"

KNOWN_VARIABLES = frozenset(v.name for v in ENVIRONMENT)
SECRET_VARIABLES = frozenset(v.name for v in ENVIRONMENT if v.secret)
PROCESS_NAMES = tuple(spec.name for spec in PROCESSES)

# `${NAME}`, `${NAME:-default}`, `${NAME:?message}`: compose's interpolation.
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<rest>[^}]*)\}")


def load_yaml(path: Path) -> Any:
    """The one document in ``path``."""
    return yaml.safe_load(path.read_text())


def load_documents(path: Path) -> list[Any]:
    """Every non-empty document in ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def plugmesh_args(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed by the real ``plugmesh`` parser; fails the test when it refuses."""
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return build_parser().parse_args(argv)
    except SystemExit:
        raise AssertionError(f"plugmesh refuses {argv}: {errors.getvalue().strip()}") from None


def references(value: str) -> list[str]:
    """The names a compose value interpolates."""
    return [match["name"] for match in _REFERENCE.finditer(value)]


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """``value`` with every ``${NAME…}`` replaced from ``env`` (the env file)."""

    def one(match: re.Match[str]) -> str:
        name, rest = match["name"], match["rest"]
        if name in env:
            return env[name]
        if rest.startswith(":-") or rest.startswith("-"):
            return rest.split("-", 1)[1]
        raise AssertionError(f"${{{name}}} is not in {ENV_EXAMPLE.name}")

    return _REFERENCE.sub(one, value)


def env_file(path: Path) -> dict[str, str]:
    """``NAME=value`` lines of an env file."""
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def secret_exposed(value: str) -> bool:
    """Whether a secret's value is written out instead of interpolated from the env file.

    A URL may be spelled out around its password, as long as the password itself is an
    interpolation; any other secret is one interpolation and nothing else.
    """
    if _REFERENCE.fullmatch(value):
        return False
    url = re.fullmatch(r"[A-Za-z0-9+.-]+://[^:/@]*:(?P<password>[^@]*)@.*", value)
    return url is None or _REFERENCE.fullmatch(url["password"]) is None


def listen_port(spec: ProcessSpec, variable: str, env: Mapping[str, str]) -> int:
    """The port ``spec`` listens on for ``variable``, checking that other hosts reach it."""
    assert variable in env, f"{spec.name}: {variable} is not set"
    host, port = split_address(env[variable])
    assert host in WILDCARD_HOSTS, (
        f"{spec.name}: {variable}={env[variable]} listens on {host}, which other "
        "containers cannot reach; listen on 0.0.0.0"
    )
    return port


def address_owner(variable: str) -> ProcessSpec | None:
    """The process that listens on the address ``variable`` holds, if any."""
    for spec in PROCESSES:
        if variable in spec.address_vars:
            return spec
    return None
