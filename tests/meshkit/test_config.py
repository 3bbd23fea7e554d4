"""Configuration is read once from the environment into a frozen dataclass."""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import pytest

from meshkit.config import ConfigError, MeshConfig, address_variable, advertised_host


def test_defaults_are_the_documented_addresses() -> None:
    config = MeshConfig.from_env({})
    assert config.data_dir == Path(".plugmesh")
    assert config.registry_address == "127.0.0.1:50050"
    assert config.nats_url == "nats://127.0.0.1:4222"
    assert config.registration_secret is None
    assert dict(config.addresses) == {}


@pytest.mark.parametrize(
    ("name", "variable"),
    [
        pytest.param("registry", "PLUGMESH_REGISTRY_ADDRESS", id="registry"),
        pytest.param("gateway-grpc", "PLUGMESH_GATEWAY_GRPC_ADDRESS", id="gateway-grpc"),
        pytest.param("gateway-http", "PLUGMESH_GATEWAY_HTTP_ADDRESS", id="gateway-http"),
        pytest.param("machine-users", "PLUGMESH_MACHINE_USERS_ADDRESS", id="machine-users"),
    ],
)
def test_each_address_comes_from_its_variable(name: str, variable: str) -> None:
    config = MeshConfig.from_env({variable: "127.0.0.1:0"})

    assert address_variable(name) == variable
    assert config.address_of(name, "127.0.0.1:1") == "127.0.0.1:0"


def test_an_unset_address_is_the_process_default() -> None:
    assert MeshConfig.from_env({}).address_of("users", "127.0.0.1:1") == "127.0.0.1:1"


def test_nats_url_wins_over_the_embedded_address() -> None:
    env = {"PLUGMESH_NATS_URL": "nats://10.0.0.1:4222", "PLUGMESH_NATS_ADDRESS": "127.0.0.1:1"}
    assert MeshConfig.from_env(env).nats_url == "nats://10.0.0.1:4222"


def test_database_url_defaults_to_a_sqlite_file_per_process(tmp_path: Path) -> None:
    config = MeshConfig.from_env({"PLUGMESH_DATA_DIR": str(tmp_path)})
    assert config.database_url_for("users") == f"sqlite:///{tmp_path / 'users.db'}"
    shared = MeshConfig.from_env({"PLUGMESH_DATABASE_URL": "postgresql://db/plugmesh"})
    assert shared.database_url_for("users") == "postgresql://db/plugmesh"


def test_a_bad_number_is_refused_with_the_variable_named() -> None:
    with pytest.raises(ConfigError, match="PLUGMESH_SHUTDOWN_GRACE_SECONDS"):
        MeshConfig.from_env({"PLUGMESH_SHUTDOWN_GRACE_SECONDS": "soon"})


def test_unknown_process_is_refused() -> None:
    with pytest.raises(ConfigError, match="nope"):
        MeshConfig.from_env({}).address_of("nope")


def test_config_is_frozen() -> None:
    config = MeshConfig.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.log_level = "DEBUG"  # type: ignore[misc]  # proving it cannot be assigned


@pytest.mark.parametrize(
    ("listen_host", "configured", "advertised"),
    [
        pytest.param("0.0.0.0", "users-0.mesh", "users-0.mesh", id="configured-wins"),
        pytest.param("127.0.0.1", None, "127.0.0.1", id="specific-host"),
        pytest.param("0.0.0.0", None, "127.0.0.2", id="wildcard-own-address"),
        pytest.param("::", None, "127.0.0.2", id="v6-wildcard-own-address"),
    ],
)
def test_a_process_advertises_where_others_reach_it(
    monkeypatch: pytest.MonkeyPatch, listen_host: str, configured: str | None, advertised: str
) -> None:
    # A host name that is an address resolves to itself, without asking any resolver.
    monkeypatch.setattr(socket, "gethostname", lambda: "127.0.0.2")

    assert advertised_host(listen_host, configured) == advertised


def test_a_host_name_that_does_not_resolve_advertises_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unresolvable(name: str) -> str:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "gethostbyname", unresolvable)

    assert advertised_host("0.0.0.0", None) == "127.0.0.1"
