"""The clients in other languages (clients/): built with make, run as subprocesses with
the gateway's addresses and a token passed in their environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.debian import require_binary
from tests.gateway.auth.mesh import Mesh

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD_TIMEOUT_SECONDS = 900
RUN_TIMEOUT_SECONDS = 90


def build(target: str, *tools: str) -> Path:
    """``make target`` (quick when it is up to date, as after `make test`'s own build);
    without one of ``tools`` the test fails under CI and is skipped elsewhere."""
    for tool in tools:
        require_binary(tool)
    done = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, (
        f"make {target} failed:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
    )
    return ROOT / target


@dataclass(frozen=True)
class Finished:
    """How a client run ended."""

    returncode: int
    stdout: str
    stderr: str


def client_env(auth_mesh: Mesh, token: str) -> dict[str, str]:
    """The environment a client finds the gateway and its token in; no token when empty."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PLUGMESH_GATEWAY_GRPC": auth_mesh.gateway.grpc_address,
        "PLUGMESH_GATEWAY_HTTP": auth_mesh.gateway.http_address,
    }
    if token:
        env["PLUGMESH_TOKEN"] = token
    return env


async def run(args: list[str], env: dict[str, str]) -> Finished:
    """Run a client to its end, bounded in time, without blocking the mesh's event loop."""
    process = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return Finished(process.returncode, stdout.decode(), stderr.decode())
