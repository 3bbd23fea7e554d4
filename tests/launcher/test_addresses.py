from __future__ import annotations

import socket

import pytest

from launcher.addresses import AddressUnavailable, resolve_ports, split_address


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
