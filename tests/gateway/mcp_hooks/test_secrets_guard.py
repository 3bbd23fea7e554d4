"""The secrets guard as a hook in the mesh: a call whose arguments carry a credential is
refused (the model reads the kind and where, never the credential, and neither does the
audit log), and credentials in a result are redacted, whoever put them there."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.app import Gateway
from meshkit.server import PluginServer
from services.secretsguard.app import build
from services.secretsguard.config import SecretsGuardConfig
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.mcp_hooks.calls import call, caller, decisions, ending, text
from tests.gateway.mcp_hooks.conftest import PRE, hooks, plan
from tests.services.secretsguard.samples import found
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

CREDENTIALS = found()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def guard(auth_mesh: Mesh, gateway: Gateway) -> AsyncIterator[PluginServer]:
    """The secrets-guard plugin, registered in the mesh, its hook known to ``gateway``."""
    env = {
        "PLUGMESH_REGISTRY_ADDRESS": auth_mesh.registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SECRETS_GUARD_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
    }
    server = build(SecretsGuardConfig.from_env(env))
    await server.start()

    async def known() -> bool | None:
        service = gateway.catalog.service("secrets-guard")
        return True if service is not None and service.serving else None

    await eventually(known, timeout_seconds=30, what="the secrets guard known")
    yield server
    await server.stop()


@pytest.mark.parametrize("detector", ["github-token", "aws-access-key-id", "private-key", "jwt"])
async def test_a_call_carrying_a_credential_is_refused_naming_its_kind_and_place(
    auth_mesh: Mesh, gateway: Gateway, guard: PluginServer, detector: str
) -> None:
    actor, token = await caller(auth_mesh)
    credential = CREDENTIALS[detector]

    result = await call(gateway, token, "echo", {"text": f"deploy with {credential}"})

    assert result["isError"] is True
    reason = text(result)
    assert f"{detector} in arguments.text" in reason
    assert credential.strip() not in reason
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [("secrets-guard", "PRE_TOOL_CALL", "DENY", True)]
    assert credential.strip() not in json.dumps(details)


async def test_a_call_without_credentials_goes_through_untouched(
    auth_mesh: Mesh, gateway: Gateway, guard: PluginServer
) -> None:
    actor, token = await caller(auth_mesh)

    result = await call(gateway, token, "echo", {"text": "nothing secret here"})

    assert text(result) == "echo:nothing secret here"
    details = await ending(auth_mesh, actor)
    assert decisions(details) == [
        ("secrets-guard", "PRE_TOOL_CALL", "ALLOW", False),
        ("secrets-guard", "POST_TOOL_CALL", "ALLOW", False),
    ]


async def test_credentials_in_a_result_are_redacted_after_every_other_hook(
    auth_mesh: Mesh, gateway: Gateway, guard: PluginServer
) -> None:
    _, token = await caller(auth_mesh)
    leaked = CREDENTIALS["plugmesh-machine-token"]
    # Another hook answers in the upstream's place with a credential in its result.
    answer = {"respond": f"your token is {leaked}", "meta": {"debug": {"token": leaked}}}
    leaky = plan("hook-leaky", PRE, priority=5, pre=answer)
    async with hooks(auth_mesh, gateway, leaky):
        result = await call(gateway, token, "echo", {"text": "x"})

    assert text(result) == "your token is [redacted]"
    assert result["structuredContent"] == {"result": "your token is [redacted]"}
    assert result["_meta"]["debug"] == {"token": "[redacted]"}
    assert leaked not in json.dumps(result)
