"""The audit log through the gateway: NDJSON export and reads need an admin."""

from __future__ import annotations

import json

import pytest

from tests.gateway.auth.mesh import Mesh, person_jwt
from tests.support.waiting import eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def test_export_streams_matching_entries_as_ndjson(auth_mesh: Mesh) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    await auth_mesh.create_machine_user("exported")

    async def exported() -> list[dict[str, object]] | None:
        response = await auth_mesh.http.get(
            "/v1/audit/entries:export?action=machine_user.created", headers=admin
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.text.splitlines() if line]
        return lines if len(lines) >= 2 else None

    lines = await eventually(exported, what="machine_user.created entries exported")
    entries = [line["result"]["entry"] for line in lines]  # type: ignore[index]
    assert {entry["action"] for entry in entries} == {"machine_user.created"}


async def test_reading_the_log_needs_an_admin(auth_mesh: Mesh) -> None:
    someone = auth_mesh.bearer(person_jwt("someone"))
    assert (
        await auth_mesh.http.get("/v1/audit/entries:export", headers=someone)
    ).status_code == 403
    assert (await auth_mesh.http.get("/v1/audit/entries")).status_code == 401
