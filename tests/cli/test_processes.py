from __future__ import annotations

import socket

import pytest

from meshkit.processes import (
    ENVIRONMENT,
    PROCESSES,
    AddressUnavailable,
    environment_table,
    needed_variables,
    process_named,
    process_names,
    resolve_ports,
    split_address,
)


def test_every_address_variable_is_documented() -> None:
    documented = {variable.name for variable in ENVIRONMENT}
    used = {variable for process in PROCESSES for variable in process.address_vars}

    assert used <= documented
    assert {"PLUGMESH_NATS_URL", "PLUGMESH_NATS_ADDRESS", "PLUGMESH_DATA_DIR"} <= documented
    assert all(f"`{name}`" in environment_table() for name in documented)


def test_serve_knows_nats_and_every_process_by_name() -> None:
    assert process_names() == ("nats", "registry", "gateway", "users", "audit", "machine-users")
    assert process_named("machine-users").module == "services.machineusers"
    with pytest.raises(KeyError):
        process_named("nope")


@pytest.mark.parametrize(
    ("address", "split"),
    [
        pytest.param("127.0.0.1:50050", ("127.0.0.1", 50050), id="ipv4"),
        pytest.param("[::1]:0", ("::1", 0), id="ipv6"),
        pytest.param("localhost:8080", ("localhost", 8080), id="name"),
        pytest.param(":4222", ("127.0.0.1", 4222), id="no-host"),
    ],
)
def test_addresses_split_into_host_and_port(address: str, split: tuple[str, int]) -> None:
    assert split_address(address) == split


@pytest.mark.parametrize("address", ["127.0.0.1", "host:port", "host:"])
def test_an_address_without_a_port_is_refused(address: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        split_address(address)


def test_port_zero_becomes_distinct_free_ports() -> None:
    wanted = {f"PLUGMESH_{n}_ADDRESS": "127.0.0.1:0" for n in ("A", "B", "C")}

    resolved = resolve_ports(wanted)

    ports = {split_address(address)[1] for address in resolved.values()}
    assert resolved.keys() == wanted.keys()
    assert len(ports) == 3
    assert 0 not in ports


def test_an_address_in_use_is_reported_with_its_variable() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"

        with pytest.raises(AddressUnavailable, match="PLUGMESH_USERS_ADDRESS") as failure:
            resolve_ports({"PLUGMESH_USERS_ADDRESS": address})

    assert failure.value.address == address
    assert "in use" in str(failure.value)


@pytest.mark.parametrize(
    ("name", "needed"),
    [
        pytest.param(
            "registry",
            {
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
                "PLUGMESH_DATABASE_URL",
            },
            id="registry",
        ),
        pytest.param(
            "gateway",
            {
                "PLUGMESH_GATEWAY_GRPC_ADDRESS",
                "PLUGMESH_GATEWAY_HTTP_ADDRESS",
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
            },
            id="gateway",
        ),
        pytest.param(
            "audit",
            {
                "PLUGMESH_AUDIT_ADDRESS",
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
                "PLUGMESH_DATABASE_URL",
            },
            id="plugin",
        ),
    ],
)
def test_a_process_on_its_own_needs_its_addresses_registry_secret_nats_and_database(
    name: str, needed: set[str]
) -> None:
    variables = needed_variables(process_named(name))

    assert set(variables) == needed
    assert len(variables) == len(needed), "each once"
    assert set(variables) <= {v.name for v in ENVIRONMENT}
