"""NATS with TLS and client certificates: a real nats-server started as ``plugmesh up``
starts it, with certificates of a CA made for the test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import nats
import nats.errors
import pytest

from launcher.natsd import NatsServer
from meshkit.tls import MeshTls, nats_options
from tests.support.certs import TestCa

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa(tmp_path / "mesh")


@pytest.fixture
async def server(ca: TestCa, tmp_path: Path) -> AsyncIterator[NatsServer]:
    async with NatsServer(tmp_path / "jetstream", tls=ca.member("nats")) as running:
        yield running


async def _round_trip(url: str, tls: MeshTls | None) -> bytes:
    """Publish and receive one message; raises when the connection is refused."""
    client = await nats.connect(
        url, connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0, **nats_options(tls)
    )
    try:
        subscription = await client.subscribe("plugmesh.test")
        await client.publish("plugmesh.test", b"over tls")
        message = await subscription.next_msg(timeout=5)
    finally:
        await client.close()
    return message.data


async def test_a_member_with_a_mesh_certificate_publishes_and_receives(
    server: NatsServer, ca: TestCa
) -> None:
    assert await _round_trip(server.url, ca.member("users")) == b"over tls"


async def test_a_client_without_a_certificate_is_refused(server: NatsServer) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        await _round_trip(server.url, None)


async def test_a_certificate_of_another_ca_is_refused(
    server: NatsServer, ca: TestCa, tmp_path: Path
) -> None:
    stranger = TestCa(tmp_path / "other").member("users")
    # It trusts the mesh CA: only its own certificate can make the handshake fail.
    forged = MeshTls(stranger.cert_file, stranger.key_file, ca.member("any").ca_file)
    with pytest.raises((nats.errors.Error, OSError)):
        await _round_trip(server.url, forged)
