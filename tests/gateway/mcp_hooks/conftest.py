"""Fixtures: the auth mesh, a gateway federating our test MCP server as ``up``, and hook
plugins (:mod:`tests.gateway.mcp_hooks.hook_plugin`) run as processes of their own.

Tests using them run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest_asyncio

from gateway.app import Gateway
from gateway.mcpfront.hooks.declared import declared_hooks
from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.mcp.federating import federating
from tests.gateway.mcp_upstreams.conftest import ROOT
from tests.support.waiting import eventually

auth_mesh = _auth_fixtures.auth_mesh

PLUGIN = "tests.gateway.mcp_hooks.hook_plugin"
PRE = "HOOK_PHASE_PRE_TOOL_CALL"
POST = "HOOK_PHASE_POST_TOOL_CALL"
FILTER = "HOOK_PHASE_FILTER_TOOLS"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway(auth_mesh: Mesh) -> AsyncIterator[Gateway]:
    """A gateway federating ``up`` (its tool calls time out after 2 s)."""
    async with federating(auth_mesh) as running:
        yield running


def plan(
    name: str,
    *phases: str,
    priority: int = 0,
    pre: Mapping[str, Any] | None = None,
    post: Mapping[str, Any] | None = None,
    hide: tuple[str, ...] = (),
    **declared: Any,
) -> dict[str, Any]:
    """A hook plugin's plan: its name, its ``ToolHook`` (``phases``, ``priority`` and
    ``declared``, as protobuf JSON: ``mode``, ``failureMode``, ``timeoutMs``, ``match``)
    and its answers."""
    hook = {"phases": list(phases), "priority": priority, **declared}
    return {"name": name, "hook": hook, "pre": pre or {}, "post": post or {}, "hide": list(hide)}


@dataclass
class HookProcess:
    """A hook plugin's process."""

    name: str
    process: asyncio.subprocess.Process

    def kill(self) -> None:
        """Kill it at once: no deregistration, no goodbye."""
        if self.process.returncode is None:
            self.process.kill()


@contextlib.asynccontextmanager
async def hooks(
    mesh: Mesh, gateway: Gateway, *plans: dict[str, Any]
) -> AsyncIterator[dict[str, HookProcess]]:
    """Hook plugins run as ``plans`` say, once ``gateway`` knows them serving; stopped
    (and gone from ``gateway``) afterwards."""
    env = {
        **os.environ,
        "PLUGMESH_REGISTRY_ADDRESS": mesh.registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
        "PLUGMESH_LOG_LEVEL": "WARNING",
    }
    running: dict[str, HookProcess] = {}
    try:
        for each in plans:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", PLUGIN, json.dumps(each), cwd=str(ROOT), env=env
            )
            running[each["name"]] = HookProcess(each["name"], process)
        await _known(gateway, set(running), serving=True)
        yield running
    finally:
        for hook in running.values():
            if hook.process.returncode is None:
                hook.process.send_signal(signal.SIGTERM)
        for hook in running.values():
            try:
                await asyncio.wait_for(hook.process.wait(), 10)
            except TimeoutError:
                hook.kill()
                await hook.process.wait()
        await _known(gateway, set(), serving=False, gone=set(running))


async def _known(
    gateway: Gateway, names: set[str], *, serving: bool, gone: set[str] | None = None
) -> None:
    """Wait until ``gateway`` knows the hooks ``names`` (SERVING), and none of ``gone``."""

    async def known() -> bool | None:
        snapshot = gateway.catalog.snapshot
        declared = {hook.name for hook in declared_hooks(snapshot)}
        if gone and declared & gone:
            return None
        for name in names:
            service = snapshot.service(name)
            if name not in declared or service is None or (serving and not service.serving):
                return None
        return True

    await eventually(known, timeout_seconds=30, what=f"hooks {sorted(names)} known, {gone} gone")
