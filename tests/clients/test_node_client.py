"""The Node/TypeScript client (clients/node), built on stubs generated from protos/, walks
through users, machine users and audit with an admin machine token: first over native gRPC
through the gateway's ingress port, then over HTTP/JSON through its transcoding port. What
it reports is checked here and against the mesh's own state, read with Python's stubs."""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import pytest
import pytest_asyncio

from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.clients.programs import ROOT, build, client_env, run
from tests.gateway.auth.mesh import Mesh

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

MAIN = ROOT / "clients/node/dist/clients/node/src/main.js"
RUN_NAME = "walk"
#: A whole machine token: "pmk_" and more than the 8 characters of its shown prefix.
WHOLE_TOKEN = re.compile(r"pmk_[A-Za-z0-9_-]{9,}")
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED.value[0]
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]


@pytest.fixture(scope="session")
def node() -> str:
    """The node binary, with the client built; `make test` has built it already.
    Session-scoped, so a build happens before any mesh starts rather than while one waits."""
    build("clients/node/dist/.built", "node", "npm")
    return "node"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def report(auth_mesh: Mesh, node: str) -> dict[str, Any]:
    """What the client printed after its walk over both transports."""
    env = {**client_env(auth_mesh, auth_mesh.admin_token), "PLUGMESH_RUN_NAME": RUN_NAME}
    done = await run([node, str(MAIN)], env)
    assert done.returncode == 0, done.stderr
    assert WHOLE_TOKEN.search(done.stdout + done.stderr) is None, "a token was printed"
    parsed: dict[str, Any] = json.loads(done.stdout)
    return parsed


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def admin_id(auth_mesh: Mesh) -> str:
    """The machine user ID of the admin token the client was given."""
    stub: Any = machineusers_pb2_grpc.MachineUserServiceStub(auth_mesh.channel)
    listed = await stub.ListMachineUsers(
        machineusers_pb2.ListMachineUsersRequest(), metadata=_bearer(auth_mesh.admin_token)
    )
    (admin,) = [user for user in listed.machine_users if user.name == "test-admin"]
    return str(admin.machine_user_id)


TRANSPORTS = pytest.mark.parametrize("transport", ["grpc", "http"])


@TRANSPORTS
async def test_node_client_creates_a_user_and_replaces_its_permissions(
    auth_mesh: Mesh, report: dict[str, Any], transport: str
) -> None:
    walk = report[transport]
    user_id = f"{transport}-{RUN_NAME}"
    assert walk["createdRevision"] == "1"
    assert walk["user"]["userId"] == user_id
    assert walk["user"]["revision"] == "2"
    assert walk["listedUser"] is True

    stub: Any = users_pb2_grpc.UserServiceStub(auth_mesh.channel)
    stored = await stub.GetUser(
        users_pb2.GetUserRequest(user_id=user_id), metadata=_bearer(auth_mesh.admin_token)
    )
    assert stored.user.revision == 2
    assert [(rule.effect, rule.pattern) for rule in stored.user.permissions.rules] == [
        (users_pb2.EFFECT_ALLOW, "github/*"),
        (users_pb2.EFFECT_DENY, "github/delete_*"),
    ]
    assert stored.user.etag == walk["user"]["etag"]


@TRANSPORTS
async def test_node_client_checks_permissions_and_sees_which_rule_decided(
    report: dict[str, Any], transport: str
) -> None:
    decisions = [
        (
            f"{check['server']}/{check['tool']}",
            check["allowed"],
            check["reason"],
            check.get("matchedRule", {}).get("index", 0),
            check["policyRevision"],
        )
        for check in report[transport]["checks"]
    ]
    assert decisions == [
        ("github/create_issue", True, "DECISION_REASON_RULE", 0, "2"),
        ("github/delete_repo", False, "DECISION_REASON_RULE", 1, "2"),
        ("jira/create_issue", False, "DECISION_REASON_DEFAULT_DENY", 0, "2"),
    ]


@TRANSPORTS
async def test_node_client_creates_a_machine_user_whose_token_has_a_users_rights(
    auth_mesh: Mesh, report: dict[str, Any], transport: str
) -> None:
    walk = report[transport]
    machine_user = walk["machineUser"]
    assert machine_user["name"] == f"{transport}-{RUN_NAME}-bot"
    assert machine_user["role"] == "ROLE_USER"
    assert walk["tokenMatchesTokenInfo"] is True
    assert walk["listedMachineUser"] is True
    # The new token works: it reads its own audit entries, and is refused what needs an admin.
    assert "machine_user.created" in walk["bot"]["ownAuditActions"]
    refused = {"code": PERMISSION_DENIED} | ({"httpStatus": 403} if transport == "http" else {})
    assert walk["bot"]["listUsers"] == refused

    stub: Any = machineusers_pb2_grpc.MachineUserServiceStub(auth_mesh.channel)
    stored = await stub.GetMachineUser(
        machineusers_pb2.GetMachineUserRequest(machine_user_id=machine_user["machineUserId"]),
        metadata=_bearer(auth_mesh.admin_token),
    )
    assert stored.machine_user.token_info.prefix == machine_user["tokenInfo"]["prefix"]
    assert stored.machine_user.HasField("last_used_time"), "the new token was never used"


@TRANSPORTS
async def test_node_client_reads_the_audit_entries_its_actions_left(
    auth_mesh: Mesh, report: dict[str, Any], admin_id: str, transport: str
) -> None:
    audit = report[transport]["audit"]
    by_admin = {"type": "ACTOR_TYPE_MACHINE", "id": admin_id}
    user_actions = {entry["action"] for entry in audit["user"]}
    assert {"user.created", "user.permissions.updated"} <= user_actions
    assert [entry["action"] for entry in audit["machineUser"]] == ["machine_user.created"]
    for entry in audit["user"] + audit["machineUser"]:
        assert {key: entry["actor"].get(key) for key in by_admin} == by_admin
        assert entry["outcome"] == "OUTCOME_SUCCESS"

    stub: Any = audit_pb2_grpc.AuditServiceStub(auth_mesh.channel)
    stored = await stub.ListAuditEntries(
        audit_pb2.ListAuditEntriesRequest(resource=f"users/{transport}-{RUN_NAME}"),
        metadata=_bearer(auth_mesh.admin_token),
    )
    seen = {(entry["sequence"], entry["action"]) for entry in audit["user"]}
    assert seen <= {(str(entry.sequence), entry.action) for entry in stored.entries}


@TRANSPORTS
async def test_node_client_without_a_token_is_refused(
    report: dict[str, Any], transport: str
) -> None:
    refused = {"code": UNAUTHENTICATED} | ({"httpStatus": 401} if transport == "http" else {})
    assert report[transport]["withoutToken"] == refused


def _bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)
