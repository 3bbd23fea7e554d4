"""A person's first request with a JWT provisions them in users and is in the audit log
(``auth.login`` from the gateway), through the whole mesh."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.auth.mesh import Mesh, person_jwt
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def test_a_persons_first_request_provisions_them_and_is_audited(auth_mesh: Mesh) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    grace = auth_mesh.bearer(person_jwt("grace", email="grace@example.com", name="Grace H."))
    assert (await auth_mesh.http.get("/v1/users/grace", headers=admin)).status_code == 404

    await auth_mesh.http.get("/v1/users/grace", headers=grace)  # whatever it answers: she logged in
    await auth_mesh.http.get("/v1/users/grace", headers=grace)

    async def provisioned() -> dict[str, Any] | None:
        found = await auth_mesh.http.get("/v1/users/grace", headers=admin)
        return found.json()["user"] if found.status_code == 200 else None

    user = await eventually(provisioned, timeout_seconds=30, what="grace to be provisioned")
    assert (user["email"], user["displayName"]) == ("grace@example.com", "Grace H.")
    assert user["role"] == "ROLE_USER"
    assert "lastLoginTime" in user

    async def audited() -> list[dict[str, Any]] | None:
        found = await auth_mesh.http.get("/v1/audit/entries?action=auth.login", headers=admin)
        mine = [e for e in found.json().get("entries", []) if "grace" in str(e)]
        return mine or None

    (entry,) = await eventually(audited, timeout_seconds=30, what="auth.login in the audit log")
    assert entry["action"] == "auth.login"
    assert (entry["source"], entry["resource"]) == ("/plugmesh/gateway", "users/grace")
    assert entry["actor"] == {"type": "ACTOR_TYPE_USER", "id": "grace", "displayName": ""}

    # The person can now read their own record.
    own = await auth_mesh.http.get("/v1/users/grace", headers=grace)
    assert own.status_code == 200, own.text
