from __future__ import annotations

import socket
from pathlib import Path

import nats
import pytest

from launcher.natsd import NatsServer, NatsServerError, nats_command, nats_server_binary
from tests.launcher.helpers import listening, pid_alive


def test_the_nats_server_binary_of_the_package_is_found() -> None:
    binary = nats_server_binary()

    assert binary.name == "nats-server"
    assert binary.is_file()


def test_the_command_enables_jetstream_with_its_store_in_the_given_directory(
    tmp_path: Path,
) -> None:
    command = nats_command(tmp_path / "js", host="127.0.0.1", port=4999)

    assert "--jetstream" in command
    assert command[command.index("--store_dir") + 1] == str(tmp_path / "js")
    assert command[command.index("--addr") + 1] == "127.0.0.1"


async def test_embedded_server_serves_jetstream_and_leaves_nothing_behind(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "jetstream", log_path=tmp_path / "nats.log")
    async with server:
        assert server.info["jetstream"] is True
        assert server.port != 0
        pid = server.pid
        client = await nats.connect(server.url)
        try:
            jetstream = client.jetstream()
            await jetstream.add_stream(name="EVENTS", subjects=["plugmesh.events.>"])
            ack = await jetstream.publish("plugmesh.events.test", b"hello")
            assert ack.seq == 1
        finally:
            await client.close()

    assert pid is not None
    assert not pid_alive(pid)
    assert not listening(f"127.0.0.1:{server.port}")
    assert any((tmp_path / "jetstream").iterdir())


async def test_stop_is_safe_to_call_twice(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "jetstream")
    await server.start()

    await server.stop()
    await server.stop()

    assert not listening(f"127.0.0.1:{server.port}")


async def test_a_server_that_cannot_listen_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = NatsServer(tmp_path / "jetstream", port=port)

        with pytest.raises(NatsServerError, match="exited"):
            await server.start(timeout_seconds=10)
