"""The C++ client (clients/cpp), built on stubs generated from protos/, calls the users and
machine-users plugins through the gateway's gRPC ingress port with an admin machine token;
without a token, or with a token that is not an admin's, it is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import pytest

from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.clients.programs import build, client_env, run
from tests.gateway.auth.mesh import Mesh

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


@pytest.fixture(scope="session")
def client() -> Path:
    """The compiled client; `make test` has built it already. Session-scoped, so a build
    happens before any mesh starts rather than while one waits."""
    return build(
        ".build/clients/cpp/plugmesh-client", "protoc", "grpc_cpp_plugin", "g++", "pkg-config"
    )


async def call(client: Path, auth_mesh: Mesh, token: str, *args: str) -> tuple[int, Any, Any]:
    """Exit code, the JSON printed on stdout (None when empty) and on stderr (the refusal)."""
    done = await run([str(client), *args], client_env(auth_mesh, token))
    assert auth_mesh.admin_token not in done.stdout + done.stderr
    out = json.loads(done.stdout) if done.stdout.strip() else None
    err = json.loads(done.stderr) if done.returncode == 1 else done.stderr
    return done.returncode, out, err


async def test_cpp_client_creates_and_gets_a_user_through_the_ingress(
    auth_mesh: Mesh, client: Path
) -> None:
    code, created, refused = await call(
        client,
        auth_mesh,
        auth_mesh.admin_token,
        "create-user",
        "cpp-ada",
        "ada@cpp.example",
        "Ada from C++",
    )
    assert code == 0, refused
    assert created["user"]["userId"] == "cpp-ada"
    assert created["user"]["revision"] == "1"
    assert created["user"]["role"] == "ROLE_USER"

    code, got, refused = await call(client, auth_mesh, auth_mesh.admin_token, "get-user", "cpp-ada")
    assert code == 0, refused
    assert got["user"] == created["user"]

    stub: Any = users_pb2_grpc.UserServiceStub(auth_mesh.channel)
    stored = await stub.GetUser(
        users_pb2.GetUserRequest(user_id="cpp-ada"), metadata=_bearer(auth_mesh.admin_token)
    )
    assert (stored.user.email, stored.user.display_name) == ("ada@cpp.example", "Ada from C++")
    assert stored.user.etag == got["user"]["etag"]


async def test_cpp_client_lists_the_machine_users(auth_mesh: Mesh, client: Path) -> None:
    code, listed, refused = await call(
        client, auth_mesh, auth_mesh.admin_token, "list-machine-users"
    )
    assert code == 0, refused

    stub: Any = machineusers_pb2_grpc.MachineUserServiceStub(auth_mesh.channel)
    expected = await stub.ListMachineUsers(
        machineusers_pb2.ListMachineUsersRequest(), metadata=_bearer(auth_mesh.admin_token)
    )
    names = {user["name"]: user["machineUserId"] for user in listed["machineUsers"]}
    assert names == {user.name: user.machine_user_id for user in expected.machine_users}
    assert {"test-admin", "test-plain"} <= names.keys()
    assert all("token" not in user for user in listed["machineUsers"])


@pytest.mark.parametrize(
    ("who", "args", "status"),
    [
        pytest.param(
            "nobody", ("get-user", "cpp-ada"), grpc.StatusCode.UNAUTHENTICATED, id="no-token"
        ),
        pytest.param(
            "nobody", ("list-machine-users",), grpc.StatusCode.UNAUTHENTICATED, id="no-token-list"
        ),
        pytest.param(
            "plain", ("list-machine-users",), grpc.StatusCode.PERMISSION_DENIED, id="not-an-admin"
        ),
        pytest.param(
            "admin", ("get-user", "cpp-nobody"), grpc.StatusCode.NOT_FOUND, id="missing-user"
        ),
    ],
)
async def test_cpp_client_reports_a_refused_call_with_its_grpc_code(
    auth_mesh: Mesh, client: Path, who: str, args: tuple[str, ...], status: grpc.StatusCode
) -> None:
    token = {"nobody": "", "plain": auth_mesh.user_token, "admin": auth_mesh.admin_token}[who]
    code, out, refusal = await call(client, auth_mesh, token, *args)
    assert (code, out) == (1, None)
    assert refusal["code"] == status.value[0], refusal
    assert refusal["message"]


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
