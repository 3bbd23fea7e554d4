"""A user's whole life through the gateway, over HTTP and over gRPC, with real tokens:
an admin machine token creates, reads, changes and deletes; the person, signed in with a
JWT, reads their own record and checks their own permissions and nobody else's."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.gateway.auth.mesh import Mesh, person_jwt

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]


async def test_user_lifecycle_over_http(auth_mesh: Mesh) -> None:
    admin = auth_mesh.bearer(auth_mesh.admin_token)
    created = await auth_mesh.http.post(
        "/v1/users",
        headers=admin,
        json={
            "userId": "ada",
            "email": "ada@example.com",
            "displayName": "Ada",
            "permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "github/*"}]},
        },
    )
    assert created.status_code == 200, created.text
    assert created.json()["user"]["revision"] == "1"

    ada = auth_mesh.bearer(person_jwt("ada", email="ada@example.com"))
    own = await auth_mesh.http.get("/v1/users/ada", headers=ada)
    assert own.status_code == 200, own.text
    assert own.json()["user"]["displayName"] == "Ada"
    check = await auth_mesh.http.post(
        "/v1/users/ada:checkPermission", headers=ada, json={"server": "github", "tool": "x"}
    )
    assert check.json()["allowed"] is True
    assert check.json()["matchedRule"]["rule"]["pattern"] == "github/*"
    assert (await auth_mesh.http.get("/v1/users", headers=ada)).status_code == 403
    renamed = await auth_mesh.http.patch(
        "/v1/users/ada", headers=ada, json={"displayName": "Ada L."}
    )
    assert renamed.status_code == 403

    changed = await auth_mesh.http.patch(
        "/v1/users/ada?updateMask=displayName", headers=admin, json={"displayName": "Ada L."}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["user"]["displayName"] == "Ada L."
    seed_path = "/api/plugins/user-management/users/ada/permissions"
    denied = await auth_mesh.http.patch(
        seed_path,
        headers=admin,
        json={"permissions": {"rules": [{"effect": "EFFECT_DENY", "pattern": "*"}]}},
    )
    assert denied.status_code == 200, denied.text
    check = await auth_mesh.http.post(
        "/v1/users/ada:checkPermission", headers=ada, json={"server": "github", "tool": "x"}
    )
    assert check.json()["allowed"] is False

    listed = await auth_mesh.http.get("/api/plugins/user-management/users", headers=admin)
    assert "ada" in [u["userId"] for u in listed.json()["users"]]
    deleted = await auth_mesh.http.delete("/v1/users/ada", headers=admin)
    assert deleted.status_code == 200, deleted.text
    gone = await auth_mesh.http.get("/v1/users/ada", headers=admin)
    assert gone.status_code == 404
    assert gone.json()["details"][0]["reason"]


async def test_user_lifecycle_over_grpc_through_the_ingress(auth_mesh: Mesh) -> None:
    admin = (("authorization", f"Bearer {auth_mesh.admin_token}"),)
    grace = (("authorization", f"Bearer {person_jwt('grace')}"),)
    stub: Any = users_pb2_grpc.UserServiceStub(auth_mesh.channel)

    created = await stub.CreateUser(
        users_pb2.CreateUserRequest(user=users_pb2.User(user_id="grace", display_name="Grace")),
        metadata=admin,
    )
    assert created.user.revision == 1
    own = await stub.GetUser(users_pb2.GetUserRequest(user_id="grace"), metadata=grace)
    assert own.user.display_name == "Grace"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.DeleteUser(users_pb2.DeleteUserRequest(user_id="grace"), metadata=grace)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    updated = await stub.UpdateUser(
        users_pb2.UpdateUserRequest(
            user=users_pb2.User(user_id="grace", display_name="Grace H."),
            update_mask=field_mask_pb2.FieldMask(paths=["display_name"]),
        ),
        metadata=admin,
    )
    assert (updated.user.display_name, updated.user.revision) == ("Grace H.", 2)
    await stub.DeleteUser(users_pb2.DeleteUserRequest(user_id="grace"), metadata=admin)
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.GetUser(users_pb2.GetUserRequest(user_id="grace"), metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("method", "path", "body", "named"),
    [
        pytest.param(
            "POST",
            "/v1/users",
            {
                "userId": "bad",
                "permissions": {"rules": [{"effect": "EFFECT_ALLOW", "pattern": "a/b/c"}]},
            },
            "a/b/c",
            id="malformed-pattern",
        ),
        pytest.param(
            "PATCH",
            "/v1/users/nobody?updateMask=shoeSize",
            {"displayName": "x"},
            "shoe_size",
            id="bad-update-mask",
        ),
    ],
)
async def test_bad_input_over_http_is_400_naming_what_was_wrong(
    auth_mesh: Mesh, method: str, path: str, body: dict[str, Any], named: str
) -> None:
    response = await auth_mesh.http.request(
        method, path, headers=auth_mesh.bearer(auth_mesh.admin_token), json=body
    )
    assert response.status_code == 400, response.text
    assert named in response.json()["message"]
