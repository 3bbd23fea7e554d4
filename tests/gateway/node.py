"""Running the Node test plugin (tests/node/plugin.js) as a subprocess.

:func:`start_node` spawns ``node plugin.js`` against a registry and returns once the
plugin printed that it registered; :meth:`NodePlugin.stop` ends it with SIGTERM (it
deregisters), or kills it when it does not exit in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

import google.api
import grpc_tools
import pytest

from meshkit.tls import MeshTls

NODE_DIR = Path(__file__).resolve().parent.parent / "node"
PLUGIN = NODE_DIR / "plugin.js"
NODE = shutil.which("node")
#: The service name the plugin registers under.
NAME = "node-greeter"
GREETER = "test.greeter.v1.GreeterService"
_REGISTERED_TIMEOUT_SECONDS = 30.0

#: Marks for tests that run the Node plugin.
NEEDS_NODE = [
    pytest.mark.skipif(NODE is None, reason="node is not installed"),
    pytest.mark.skipif(
        not (NODE_DIR / "node_modules").is_dir(),
        reason="the Node packages are installed by `make test` (npm ci in tests/node)",
    ),
]


def include_dirs() -> list[str]:
    """Where protobufjs finds google/api/*.proto and google/protobuf/*.proto: the
    googleapis-common-protos and grpcio-tools packages."""
    googleapis = Path(next(iter(google.api.__path__))).parent.parent
    well_known = Path(next(iter(grpc_tools.__path__))) / "_proto"
    return [str(googleapis), str(well_known)]


@dataclass
class NodePlugin:
    """A running Node plugin and what it printed once registered."""

    process: asyncio.subprocess.Process
    address: str
    instance_id: str
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self) -> str:
        """What the plugin logged so far."""
        return self.log.read_text(errors="replace")

    async def exit_code(self, timeout_seconds: float = 10.0) -> int:
        """Wait for the process to end; its exit code."""
        async with asyncio.timeout(timeout_seconds):
            return await self.process.wait()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL when it has not exited within 10 s. Safe to call twice."""
        await stop_process(self.process)


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """End ``process`` with SIGTERM, or SIGKILL after 10 s."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        async with asyncio.timeout(10):
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()


async def spawn(
    registry_address: str,
    secret: str,
    log: Path,
    *,
    nats_url: str | None = None,
    hook: bool = False,
    tls: MeshTls | None = None,
) -> tuple[asyncio.subprocess.Process, bytes]:
    """Start the plugin (with its tool-call hook when ``hook``, its certificate when
    ``tls``); the process and the first line it printed (empty if it exited)."""
    assert NODE is not None
    arguments = [arg for directory in include_dirs() for arg in ("--include", directory)]
    if hook:
        arguments.append("--hook")
    env = {
        **os.environ,
        "PLUGMESH_REGISTRY_ADDRESS": registry_address,
        "PLUGMESH_REGISTRATION_SECRET": secret,
    }
    if nats_url is not None:
        env["PLUGMESH_NATS_URL"] = nats_url
    if tls is not None:
        env["PLUGMESH_TLS_CERT_FILE"] = str(tls.cert_file)
        env["PLUGMESH_TLS_KEY_FILE"] = str(tls.key_file)
        env["PLUGMESH_TLS_CA_FILE"] = str(tls.ca_file)
    with log.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            NODE,
            str(PLUGIN),
            "--name",
            NAME,
            *arguments,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
        )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(_REGISTERED_TIMEOUT_SECONDS):
            line = await process.stdout.readline()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process, line


async def start_node(
    registry_address: str,
    secret: str,
    log: Path,
    *,
    nats_url: str | None = None,
    hook: bool = False,
    tls: MeshTls | None = None,
) -> NodePlugin:
    """Start the plugin (with its tool-call hook when ``hook``) and wait until it
    registered.

    Raises:
        AssertionError: It exited first; the message holds its log.
    """
    process, line = await spawn(
        registry_address, secret, log, nats_url=nats_url, hook=hook, tls=tls
    )
    if not line:
        code = await process.wait()
        logged = await asyncio.to_thread(log.read_text)
        raise AssertionError(f"the Node plugin exited with {code}: {logged}")
    printed = json.loads(line)
    return NodePlugin(process, printed["address"], printed["instance_id"], log)
