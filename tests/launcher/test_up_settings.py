from __future__ import annotations

import io
from pathlib import Path

from launcher.up import LogEcho, UpSettings, child_env


def test_the_flag_wins_over_the_environment_for_the_data_dir(tmp_path: Path) -> None:
    env = {"PLUGMESH_DATA_DIR": str(tmp_path / "env")}

    assert UpSettings.from_env(env).data_dir == tmp_path / "env"
    assert UpSettings.from_env(env, data_dir=str(tmp_path / "flag")).data_dir == tmp_path / "flag"


def test_the_default_data_dir_is_absolute() -> None:
    data_dir = UpSettings.from_env({}).data_dir

    assert data_dir.is_absolute()
    assert data_dir.name == ".plugmesh"


def test_an_external_nats_replaces_the_embedded_one() -> None:
    embedded = UpSettings.from_env({})
    external = UpSettings.from_env({"PLUGMESH_NATS_URL": "nats://nats.example:4222"})

    assert embedded.addresses["PLUGMESH_NATS_ADDRESS"] == "127.0.0.1:4222"
    assert "PLUGMESH_NATS_ADDRESS" not in external.addresses
    assert external.nats_url == "nats://nats.example:4222"


def test_children_get_the_concrete_addresses_the_data_dir_and_the_secret(tmp_path: Path) -> None:
    settings = UpSettings.from_env(
        {"PLUGMESH_USERS_ADDRESS": "127.0.0.1:0", "PATH": "/bin"}, data_dir=str(tmp_path)
    )
    addresses = {"PLUGMESH_USERS_ADDRESS": "127.0.0.1:41000", "PLUGMESH_NATS_ADDRESS": "[::1]:42"}

    env = child_env(settings, addresses, "s3cret")

    assert env["PLUGMESH_USERS_ADDRESS"] == "127.0.0.1:41000"
    assert env["PLUGMESH_NATS_URL"] == "nats://[::1]:42"
    assert env["PLUGMESH_DATA_DIR"] == str(tmp_path)
    assert env["PLUGMESH_REGISTRATION_SECRET"] == "s3cret"
    assert env["PATH"] == "/bin"


def test_verbose_echo_prints_each_new_complete_line_once(tmp_path: Path) -> None:
    old, new = tmp_path / "users.log", tmp_path / "machine-users.log"
    old.write_text("from an earlier run\n")
    out = io.StringIO()
    echo = LogEcho({"users": old, "machine-users": new}, out)

    with old.open("a") as file:
        file.write("one\ntw")
    echo.poll()
    with old.open("a") as file:
        file.write("o\n")
    new.write_text("three\n")
    echo.poll()
    echo.poll()

    assert out.getvalue().splitlines() == [
        "        users | one",
        "        users | two",
        "machine-users | three",
    ]
