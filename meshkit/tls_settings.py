"""The settings of mutual TLS inside the mesh (:mod:`meshkit.tls` uses them); without
gRPC, so that reading settings stays light.


Every member holds a certificate and key signed by the mesh CA, in files
(``PLUGMESH_TLS_CERT_FILE``, ``PLUGMESH_TLS_KEY_FILE``, ``PLUGMESH_TLS_CA_FILE``; the
names cert-manager writes, ``tls.crt``, ``tls.key`` and ``ca.crt``, fit). With them set
(:class:`MeshTls`), every gRPC server of the mesh requires a client certificate signed by
that CA and every channel inside the mesh presents the member's own; without them the
mesh runs in plaintext.

A member's identity is the URI SAN ``spiffe://plugmesh/<service>`` of its certificate
(:func:`peer_services`); the registry admits a registration only for that service.

Rotation: a server reads the files again when they change, at its next handshake
(``grpc.dynamic_ssl_server_credentials``), so a renewed certificate is served without a
restart; a channel reads them when it is made. Channels check the server's certificate
against the mesh CA and the mesh-wide name :data:`MESH_SERVER_NAME` (which every member's
certificate carries), not the host they dial: instances are dialled by their addresses,
which change with every pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from meshkit._env import ConfigError

#: The DNS name every member's certificate carries and every channel checks.
MESH_SERVER_NAME = "mesh.plugmesh.internal"
#: The prefix of the URI SAN that names a member's service.
IDENTITY_PREFIX = "spiffe://plugmesh/"

#: The variables that turn mutual TLS on, with their meaning (the README's table).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "PLUGMESH_TLS_CERT_FILE",
        "(plugmesh up: <data dir>/tls/<process>.crt)",
        "PEM certificate of this process, signed by the mesh CA, with the URI SAN"
        " `spiffe://plugmesh/<service>` and the DNS SAN `mesh.plugmesh.internal`; with the"
        " key and CA files set, every internal gRPC hop is mutual TLS (reread when it changes)",
    ),
    (
        "PLUGMESH_TLS_KEY_FILE",
        "(plugmesh up: <data dir>/tls/<process>.key)",
        "its PEM private key",
    ),
    (
        "PLUGMESH_TLS_CA_FILE",
        "(plugmesh up: <data dir>/tls/ca.crt)",
        "PEM certificate of the mesh CA: the only issuer of peers' certificates accepted",
    ),
)


def identity_uri(service: str) -> str:
    """The URI SAN naming ``service``.

    >>> identity_uri("users")
    'spiffe://plugmesh/users'
    """
    return IDENTITY_PREFIX + service


@dataclass(frozen=True)
class MeshTls:
    """Where a member's certificate, key and the mesh CA are."""

    cert_file: Path
    key_file: Path
    ca_file: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> MeshTls | None:
        """The files named by ``PLUGMESH_TLS_*``; ``None`` when none is set.

        Raises:
            ConfigError: some but not all are set, or one names no file.
        """
        names = [name for name, _, _ in VARIABLES]
        values = {name: (env.get(name) or "").strip() for name in names}
        if not any(values.values()):
            return None
        missing = [name for name, value in values.items() if not value]
        if missing:
            raise ConfigError(
                f"mutual TLS needs {', '.join(missing)} too (or none of {', '.join(names)})"
            )
        paths = {name: Path(value) for name, value in values.items()}
        for name, path in paths.items():
            if not path.is_file():
                raise ConfigError(f"{name} names {str(path)!r}, which is not a file")
        return cls(*paths.values())

    def read(self) -> tuple[bytes, bytes, bytes]:
        """The certificate, key and CA, PEM, as the files hold them now."""
        return self.cert_file.read_bytes(), self.key_file.read_bytes(), self.ca_file.read_bytes()
