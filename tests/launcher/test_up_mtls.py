"""``plugmesh up`` with mutual TLS (its default): a CA and a certificate per process in
the data dir, internal ports closed to callers without one, certificates renewed while
the mesh runs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import nats.errors
import pytest
from cryptography import x509

from launcher.processes import PROCESSES
from launcher.status import fetch_view
from meshkit.tls import MeshTls, dial
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from tests.launcher.helpers import stop_up, up_tls, wait_up
from tests.launcher.test_nats_tls import _round_trip
from tests.launcher.test_up import Up
from tests.meshkit.test_mutual_tls import presented_certificate
from tests.support.waiting import eventually

pytestmark = pytest.mark.timeout(180)

#: Short enough to see a renewal in the test: renewed after 30 s.
LIFETIME_SECONDS = 45


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    data_dir, output = tmp_path / "data", tmp_path / "up.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    env |= {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_NATS_ADDRESS": "127.0.0.1:0",
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "2",
        "PLUGMESH_MESH_TLS_CERT_LIFETIME_SECONDS": str(LIFETIME_SECONDS),
    }
    for spec in PROCESSES:
        env |= dict.fromkeys(spec.address_vars, "127.0.0.1:0")
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "launcher.cli", "up"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield Up(process, data_dir, output)
    finally:
        stop_up(process, grace_seconds=30)


async def _list_users(address: str, tls: MeshTls | None) -> grpc.StatusCode:
    async with dial(address, tls) as channel:
        try:
            await users_pb2_grpc.UserServiceStub(channel).ListUsers(
                users_pb2.ListUsersRequest(), timeout=5
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_up_runs_the_mesh_over_mutual_tls_and_renews_certificates_live(up: Up) -> None:
    await wait_up(up.process, up.output, timeout_seconds=90)
    addresses: dict[str, str] = up.state()["addresses"]
    tls = up_tls(up.data_dir)
    secret = (up.data_dir / "registration.secret").read_text().strip()
    directory = up.data_dir / "tls"
    assert (directory / "ca.key").stat().st_mode & 0o777 == 0o600
    assert {p.name for p in directory.glob("*.crt")} >= {
        "ca.crt",
        *(f"{spec.name}.crt" for spec in PROCESSES),
    }

    # Every process registered and is watched SERVING: over mutual TLS only.
    view = await fetch_view(addresses["PLUGMESH_REGISTRY_ADDRESS"], tls=tls, secret=secret)
    assert view.not_serving([spec.name for spec in PROCESSES]) == []

    # Without a certificate, no internal port answers; with the mesh's, the call gets
    # as far as the plugin's own authorization.
    users = addresses["PLUGMESH_USERS_ADDRESS"]
    assert await _list_users(users, None) == grpc.StatusCode.UNAVAILABLE
    assert await _list_users(users, tls) == grpc.StatusCode.UNAUTHENTICATED

    # NATS too: TLS with a client certificate of the mesh CA, or nothing.
    nats_url = up.state()["nats_url"]
    assert await _round_trip(nats_url, tls) == b"over tls"
    with pytest.raises((nats.errors.Error, OSError)):
        await _round_trip(nats_url, None)
    # The gateway's own NATS clients present theirs: the console reads the dead letters.
    admin = (up.data_dir / "admin.token").read_text().strip()
    gateway = addresses["PLUGMESH_GATEWAY_HTTP_ADDRESS"]
    async with httpx.AsyncClient(timeout=10) as http:
        letters = await http.get(
            f"http://{gateway}/console/api/deadletters",
            headers={"Authorization": f"Bearer {admin}"},
        )
    assert letters.status_code == 200, letters.text

    # The users plugin serves its renewed certificate without a restart.
    pid = up.state()["children"]["users"]
    first = await asyncio.to_thread(presented_certificate, users, tls)

    async def renewed() -> x509.Certificate | None:
        now = await asyncio.to_thread(presented_certificate, users, tls)
        return now if now.serial_number != first.serial_number else None

    later = await eventually(
        renewed, timeout_seconds=LIFETIME_SECONDS * 2, interval_seconds=1, what="a renewal"
    )
    on_disk = x509.load_pem_x509_certificate((directory / "users.crt").read_bytes())
    assert later.serial_number == on_disk.serial_number
    assert up.state()["children"]["users"] == pid, "users was not restarted"
    view = await fetch_view(addresses["PLUGMESH_REGISTRY_ADDRESS"], tls=tls, secret=secret)
    assert view.health_of("users") == "SERVING"
