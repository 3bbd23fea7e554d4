"""Fixtures: the authentication tests' whole mesh (``auth_mesh``), and beside it two
gateway replicas with rate limits, both federating our test MCP server over stdio as
``up``, sharing the mesh's NATS.

Tests using them run in the module's event loop: their modules set
``pytestmark = pytest.mark.asyncio(loop_scope="module")``. Each test counts for callers
of its own (fresh machine users), so the tests of a module do not share counts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio

from gateway.app import Gateway
from gateway.mcpfront import McpSettings
from gateway.mcpfront.spec import StdioTransport, UpstreamSpec, inherited_environment
from gateway.mcpfront.upstream import State
from gateway.ratelimit import RateLimitSettings
from gateway.ratelimit.settings import Rule, parse_limit
from plugmesh.users.v1 import users_pb2
from tests.gateway.auth import conftest as _auth_fixtures
from tests.gateway.auth.mesh import Mesh
from tests.gateway.conftest import FAST
from tests.gateway.mcp.conftest import mcp_config
from tests.gateway.mcp_upstreams.conftest import ROOT, SERVER
from tests.support.waiting import until

auth_mesh = _auth_fixtures.auth_mesh

#: The federated server.
UP = "up"
#: Day-long windows: a test's calls fall in one window (see :func:`one_window`).
DAY_SECONDS = 86400.0
GET_SERVICE = "/plugmesh.registry.v1.RegistryService/GetService"
LIST_SERVICES = "/plugmesh.registry.v1.RegistryService/ListServices"
#: The limits of the replicas: small ones to exhaust, a larger one to load.
GET_SERVICE_LIMIT = 3
LIST_SERVICES_LIMIT = 50
SLOW_LIMIT = 1
RULES = (
    Rule(GET_SERVICE, parse_limit(f"{GET_SERVICE_LIMIT}/24h")),
    Rule(LIST_SERVICES, parse_limit(f"{LIST_SERVICES_LIMIT}/24h")),
    Rule(f"{UP}/slow", parse_limit(f"{SLOW_LIMIT}/24h")),
)


@dataclass
class Replicas:
    """Two gateways counting in the same NATS."""

    a: Gateway
    b: Gateway

    async def machine_user(self, mesh: Mesh) -> str:
        """A fresh machine user's token; it may call every tool of ``up``."""
        allow = users_pb2.PermissionRule(effect=users_pb2.EFFECT_ALLOW, pattern=f"{UP}/*")
        created = await mesh.create_machine_user(
            f"limited-{uuid.uuid4().hex[:8]}", permissions=users_pb2.Permissions(rules=[allow])
        )
        return created.token


@contextlib.asynccontextmanager
async def limited_gateway(mesh: Mesh, settings: RateLimitSettings) -> AsyncIterator[Gateway]:
    """A gateway in ``mesh`` with ``settings``, federating ``up``; once it counts in NATS,
    ``up`` is READY and it is linked to the mesh."""
    spec = UpstreamSpec(
        name=UP,
        transport=StdioTransport(
            command=sys.executable, args=("-m", SERVER, "stdio"), cwd=str(ROOT)
        ),
        call_timeout_seconds=5.0,
    )
    mcp = McpSettings(servers=(spec,), child_environment=inherited_environment(os.environ))
    config = dataclasses.replace(mcp_config(mesh, mcp), rate_limits=settings)
    gateway = Gateway(config, register=False, registry_backoff=FAST)
    await gateway.start()
    try:

        def ready() -> bool:
            upstream = gateway.mcp_upstreams.get(UP)
            registry = gateway.catalog.service("registry")
            limits = gateway.rate_limits
            return (
                upstream is not None
                and upstream.state is State.READY
                and registry is not None
                and registry.serving
                and gateway.auth.events.live
                and limits is not None
                and limits.counters.ready
            )

        await until(ready, timeout_seconds=40, what="the limited gateway ready")
        yield gateway
    finally:
        await gateway.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def replicas(auth_mesh: Mesh) -> AsyncIterator[Replicas]:
    """Two replicas with :data:`RULES`, shared by a module's tests."""
    settings = RateLimitSettings(rules=RULES)
    async with (
        limited_gateway(auth_mesh, settings) as a,
        limited_gateway(auth_mesh, settings) as b,
    ):
        yield Replicas(a, b)


async def one_window() -> None:
    """Return when at least a minute is left of the current day-long window (waits out
    the last minute of a UTC day), so a test's calls are counted in one window."""
    left = DAY_SECONDS - time.time() % DAY_SECONDS
    if left < 60:
        await until(
            lambda: DAY_SECONDS - time.time() % DAY_SECONDS > 60,
            timeout_seconds=70,
            interval_seconds=1,
            what="a new window",
        )
