"""``host:port`` addresses: split, joined, and checked free before ``plugmesh up`` uses them."""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping

__all__ = ["AddressUnavailable", "join_address", "resolve_ports", "split_address"]


def split_address(address: str) -> tuple[str, int]:
    """Split ``host:port`` (or ``[v6]:port``) into its host and port.

    Raises:
        ValueError: The address has no numeric port.
    """
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def join_address(host: str, port: int) -> str:
    """Join a host and a port into ``host:port``, bracketing IPv6 hosts."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class AddressUnavailable(OSError):
    """An address cannot be listened on: taken by another process, or not local."""

    def __init__(self, variable: str, address: str, reason: str) -> None:
        super().__init__(f"cannot listen on {address} ({variable}): {reason}")
        self.variable = variable
        self.address = address


def resolve_ports(addresses: Mapping[str, str]) -> dict[str, str]:
    """Check that every address is free, and replace port 0 by a distinct free port.

    Each address is bound once to test it (without ``SO_REUSEPORT``, so a server that
    shares ports, as gRPC does by default, cannot hide a mesh already running there);
    the probes stay bound until every port is picked, so two addresses never get the
    same port.

    Raises:
        AddressUnavailable: An address is in use or not local; it names the variable.
    """
    resolved: dict[str, str] = {}
    probes: list[socket.socket] = []
    try:
        for key, address in addresses.items():
            host, port = split_address(address)
            probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            probes.append(probe)
            # Lets a port in TIME_WAIT from a previous run count as free, as servers do.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                reason = "in use" if exc.errno == errno.EADDRINUSE else exc.strerror
                raise AddressUnavailable(key, address, reason or str(exc)) from exc
            resolved[key] = join_address(host, probe.getsockname()[1])
    finally:
        for probe in probes:
            probe.close()
    return resolved
