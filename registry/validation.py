"""Checks on registration fields; every error names the field that is wrong."""

from __future__ import annotations

import re

from meshkit.errors import InvalidArgument
from registry.model import Registration
from registry.semver_range import parse_version

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_GRPC_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")


def validate_registration(registration: Registration) -> None:
    """Raise :class:`InvalidArgument` naming the first malformed field."""
    if not registration.service:
        raise _invalid("service", "service is required")
    if not _SERVICE_NAME.match(registration.service):
        raise _invalid(
            "service",
            f"service {registration.service!r} is not a valid name: lowercase letters, digits,"
            " '-' and '_', starting with a letter, at most 63 characters",
        )
    if not registration.address:
        raise _invalid("address", "address is required")
    problem = address_problem(registration.address)
    if problem:
        raise _invalid("address", f"address {registration.address!r} {problem}")
    if registration.version and parse_version(registration.version) is None:
        raise _invalid(
            "version", f"version {registration.version!r} is not a semantic version like 1.2.3"
        )
    for name in registration.grpc_services:
        if not _GRPC_NAME.match(name):
            raise _invalid("grpc_services", f"{name!r} is not a full gRPC service name")


def address_problem(address: str) -> str:
    """Return what is wrong with a ``host:port`` address, or ``""``."""
    host, colon, port = address.rpartition(":")
    if not colon or not host:
        return "is not host:port"
    if not _HOST.match(host):
        return f"has an invalid host {host!r}"
    if not port.isdigit() or not 0 < int(port) < 65536:
        return f"has an invalid port {port!r}"
    return ""


def _invalid(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, reason="INVALID_FIELD", metadata={"field": field})
