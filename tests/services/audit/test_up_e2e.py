"""Under ``plugmesh up``: a user created in the users plugin shows up in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from launcher.processes import PROCESSES
from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from meshkit.tls import dial
from plugmesh.audit.v1 import audit_pb2, audit_pb2_grpc
from plugmesh.events.v1 import event_pb2
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.launcher.helpers import stop_up, up_tls, wait_up
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def up_data_dir(tmp_path: Path) -> AsyncIterator[Path]:
    """A running ``plugmesh up`` on free ports; its data dir."""
    data_dir, output = tmp_path / "data", tmp_path / "up.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    env |= {"PLUGMESH_DATA_DIR": str(data_dir), "PLUGMESH_NATS_ADDRESS": "127.0.0.1:0"}
    for process in PROCESSES:
        env |= dict.fromkeys(process.address_vars, "127.0.0.1:0")
    up = _start(env, output)
    try:
        await wait_up(up, output, timeout_seconds=60)
        yield data_dir
    finally:
        stop_up(up, grace_seconds=30)


def _start(env: dict[str, str], output: Path) -> subprocess.Popen[bytes]:
    with output.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


async def test_a_user_created_in_the_mesh_is_audited(up_data_dir: Path) -> None:
    addresses = json.loads((up_data_dir / "up.json").read_text())["addresses"]
    key = signing_key((up_data_dir / "registration.secret").read_text().strip())
    assert key is not None
    admin = to_metadata(Identity(PrincipalKind.USER, "root", admin=True), key)

    async with (
        dial(addresses["PLUGMESH_USERS_ADDRESS"], up_tls(up_data_dir)) as users_channel,
        dial(addresses["PLUGMESH_AUDIT_ADDRESS"], up_tls(up_data_dir)) as audit_channel,
    ):
        users = users_pb2_grpc.UserServiceStub(users_channel)
        audit = audit_pb2_grpc.AuditServiceStub(audit_channel)
        created = await users.CreateUser(
            users_pb2.CreateUserRequest(user=users_pb2.User(email="e2e@example.com")),
            metadata=admin,
        )
        resource = f"users/{created.user.user_id}"

        async def audited() -> audit_pb2.AuditEntry | None:
            request = audit_pb2.ListAuditEntriesRequest(action="user.created", resource=resource)
            try:
                response = await audit.ListAuditEntries(request, metadata=admin)
            except grpc.aio.AioRpcError:
                return None
            return response.entries[0] if response.entries else None

        entry = await eventually(audited, timeout_seconds=30, what="the user.created entry")
        assert entry.source == "/plugmesh/users"
        assert (entry.actor.type, entry.actor.id) == (event_pb2.ACTOR_TYPE_USER, "root")
        assert entry.outcome == audit_pb2.OUTCOME_SUCCESS
        verified = await audit.VerifyAuditChain(audit_pb2.VerifyAuditChainRequest(), metadata=admin)
        assert verified.intact, verified.message
