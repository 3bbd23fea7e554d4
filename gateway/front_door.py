"""TLS at the gateway's front door: its HTTP and gRPC ports.

With a certificate and key (``PLUGMESH_GATEWAY_TLS_CERT_FILE``,
``PLUGMESH_GATEWAY_TLS_KEY_FILE``), both ports serve TLS, and a renewed certificate
(the files rewritten) without a restart: the gRPC port from its next handshake, the HTTP
port after its next check of the files (every 30 s). Without them
both serve plaintext, which is allowed on a loopback address only (``curl`` and
``grpcurl -plaintext`` on one machine), unless ``PLUGMESH_GATEWAY_PLAINTEXT=allow`` says
that something in front (a load balancer, an ingress controller) terminates TLS.

Clients are not asked for a certificate here: callers authenticate with bearer tokens.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshkit.config import ConfigError

__all__ = ["VARIABLES", "FrontDoorTls"]

#: The front door's variables, with their defaults and meaning (the README's table).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "PLUGMESH_GATEWAY_TLS_CERT_FILE",
        "(none)",
        "PEM certificate (chain) the gateway's HTTP and gRPC ports serve TLS with; without"
        " it they serve plaintext",
    ),
    ("PLUGMESH_GATEWAY_TLS_KEY_FILE", "(none)", "its PEM private key"),
    (
        "PLUGMESH_GATEWAY_PLAINTEXT",
        "loopback",
        "where the gateway may serve plaintext without a certificate: `loopback` addresses"
        " only (it refuses to start on another), or `allow` anywhere (TLS ends in front of it)",
    ),
)


@dataclass(frozen=True)
class FrontDoorTls:
    """The front door's certificate, or plaintext and where it is allowed."""

    cert_file: Path | None = None
    key_file: Path | None = None
    plaintext_anywhere: bool = False

    @property
    def enabled(self) -> bool:
        """Whether the ports serve TLS."""
        return self.cert_file is not None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FrontDoorTls:
        """Read ``PLUGMESH_GATEWAY_TLS_*`` and ``PLUGMESH_GATEWAY_PLAINTEXT``.

        Raises:
            ConfigError: one of the certificate and key is set without the other, names
                no file, or the plaintext setting is neither ``loopback`` nor ``allow``.
        """
        cert = (env.get("PLUGMESH_GATEWAY_TLS_CERT_FILE") or "").strip()
        key = (env.get("PLUGMESH_GATEWAY_TLS_KEY_FILE") or "").strip()
        plaintext = (env.get("PLUGMESH_GATEWAY_PLAINTEXT") or "loopback").strip().lower()
        if plaintext not in ("loopback", "allow"):
            raise ConfigError(
                f"PLUGMESH_GATEWAY_PLAINTEXT must be loopback or allow, got {plaintext!r}"
            )
        if bool(cert) != bool(key):
            raise ConfigError(
                "PLUGMESH_GATEWAY_TLS_CERT_FILE and PLUGMESH_GATEWAY_TLS_KEY_FILE go together"
            )
        for name, value in (
            ("PLUGMESH_GATEWAY_TLS_CERT_FILE", cert),
            ("PLUGMESH_GATEWAY_TLS_KEY_FILE", key),
        ):
            if value and not Path(value).is_file():
                raise ConfigError(f"{name} names {value!r}, which is not a file")
        return cls(
            Path(cert) if cert else None,
            Path(key) if key else None,
            plaintext_anywhere=plaintext == "allow",
        )

    def check(self, variable: str, address: str) -> None:
        """Refuse to serve plaintext on ``address`` (held by ``variable``) when it is not a
        loopback address and plaintext is not allowed anywhere.

        Raises:
            ConfigError: naming the variable and the ways out.
        """
        if self.enabled or self.plaintext_anywhere or is_loopback(address):
            return
        raise ConfigError(
            f"{variable} is {address}, not a loopback address: the gateway serves it only with"
            " TLS (set PLUGMESH_GATEWAY_TLS_CERT_FILE and PLUGMESH_GATEWAY_TLS_KEY_FILE), or"
            " in plaintext with PLUGMESH_GATEWAY_PLAINTEXT=allow when TLS ends in front of it"
        )


def is_loopback(address: str) -> bool:
    """Whether the host of ``host:port`` is a loopback address or ``localhost``.

    >>> [is_loopback(a) for a in ("127.0.0.1:8080", "[::1]:80", "0.0.0.0:80", "example:1")]
    [True, True, False, False]
    """
    host = address.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
