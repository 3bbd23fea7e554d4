"""Mutual TLS between the members of the mesh: servers that require a client
certificate signed by the mesh CA, channels that present one.

The settings (:class:`MeshTls`, from ``PLUGMESH_TLS_*``) are in
:mod:`meshkit.tls_settings`; what they mean for the mesh is told there.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from meshkit.tls_settings import IDENTITY_PREFIX, MESH_SERVER_NAME, MeshTls, identity_uri

__all__ = [
    "CHANNEL_OPTIONS",
    "MESH_SERVER_NAME",
    "MeshTls",
    "add_port",
    "channel_credentials",
    "dial",
    "identity_uri",
    "nats_options",
    "peer_services",
    "rotating_server_credentials",
    "server_credentials",
]

log = logging.getLogger(__name__)


def server_credentials(tls: MeshTls) -> grpc.ServerCredentials:
    """Credentials of a server that requires a client certificate signed by the CA and
    serves the files' certificate, reread when they change."""
    return rotating_server_credentials(tls.cert_file, tls.key_file, tls.ca_file)


def rotating_server_credentials(
    cert_file: Path, key_file: Path, ca_file: Path | None
) -> grpc.ServerCredentials:
    """Credentials serving the certificate in ``cert_file``, reread at the next handshake
    after a file changed; with ``ca_file`` they require a client certificate it signed,
    without it (a front door) they ask for none."""
    return _RotatingServerCredentials(cert_file, key_file, ca_file).credentials


def channel_credentials(tls: MeshTls) -> grpc.ChannelCredentials:
    """Credentials of a channel that presents the member's certificate and trusts the
    mesh CA only."""
    certificate, key, ca = tls.read()
    return grpc.ssl_channel_credentials(
        root_certificates=ca, private_key=key, certificate_chain=certificate
    )


#: Channel options that check a server's certificate against :data:`MESH_SERVER_NAME`.
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.ssl_target_name_override", MESH_SERVER_NAME),
    ("grpc.default_authority", MESH_SERVER_NAME),
)


def nats_options(tls: MeshTls | None) -> dict[str, Any]:
    """The ``nats.connect`` options of a member's connection: TLS presenting its
    certificate, trusting the mesh CA and checking :data:`MESH_SERVER_NAME`; none (a
    plaintext connection) without ``tls``.

    The context is made once per connection, so a reconnection presents the certificate
    read when the connection was made.
    """
    if tls is None:
        return {}
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file))
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return {"tls": context, "tls_hostname": MESH_SERVER_NAME}


def dial(
    address: str,
    tls: MeshTls | None,
    *,
    options: Sequence[tuple[str, Any]] = (),
    interceptors: Sequence[grpc.aio.ClientInterceptor] | None = None,
) -> grpc.aio.Channel:
    """A channel to a member of the mesh at ``address``: mutual TLS with ``tls``,
    plaintext without."""
    if tls is None:
        return grpc.aio.insecure_channel(address, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(
        address,
        channel_credentials(tls),
        options=[*CHANNEL_OPTIONS, *options],
        interceptors=interceptors,
    )


def add_port(server: grpc.aio.Server, address: str, tls: MeshTls | None) -> int:
    """Listen on ``address``: mutual TLS with ``tls``, plaintext without; the port."""
    if tls is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, server_credentials(tls))


def peer_services(context: grpc.aio.ServicerContext[Any, Any]) -> frozenset[str]:
    """The services the caller's certificate names (``spiffe://plugmesh/<service>`` URI
    SANs; one process may serve several, as the gateway serves ``gateway`` and
    ``mcp-servers``); empty when the call came without a verified certificate."""
    names: set[str] = set()
    for value in context.auth_context().get("peer_uri", ()):
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        if text.startswith(IDENTITY_PREFIX):
            names.add(text[len(IDENTITY_PREFIX) :])
    return frozenset(names)


class _RotatingServerCredentials:
    """Server credentials whose certificate follows the files: gRPC asks at each handshake
    for a new configuration, which is read when a file's modification time changed."""

    def __init__(self, cert_file: Path, key_file: Path, ca_file: Path | None) -> None:
        self._files = (cert_file, key_file, *((ca_file,) if ca_file else ()))
        self._lock = threading.Lock()
        self._stamp = self._stamps()
        self.credentials = grpc.dynamic_ssl_server_credentials(
            self._configuration(*self._read()),
            self._fetch,
            require_client_authentication=ca_file is not None,
        )

    def _stamps(self) -> tuple[int, ...]:
        return tuple(path.stat().st_mtime_ns for path in self._files)

    def _read(self) -> tuple[bytes, bytes, bytes | None]:
        certificate, key, *ca = (path.read_bytes() for path in self._files)
        return certificate, key, ca[0] if ca else None

    @staticmethod
    def _configuration(certificate: bytes, key: bytes, ca: bytes | None) -> Any:
        return grpc.ssl_server_certificate_configuration([(key, certificate)], root_certificates=ca)

    def _fetch(self) -> Any:
        # Called by gRPC on its own threads; None keeps the configuration it has.
        with self._lock:
            try:
                stamp = self._stamps()
                if stamp == self._stamp:
                    return None
                certificate, key, ca = self._read()
            except OSError:
                return None
            if not _key_matches(certificate, key):
                return None  # between the key's rewrite and the certificate's: wait
            self._stamp = stamp
            log.info("serving a renewed certificate", extra={"cert_file": str(self._files[0])})
            return self._configuration(certificate, key, ca)


def _key_matches(certificate: bytes, key: bytes) -> bool:
    try:
        public = x509.load_pem_x509_certificate(certificate).public_key()
        private = serialization.load_pem_private_key(key, password=None)
    except ValueError:
        return False
    encoding, fmt = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return public.public_bytes(encoding, fmt) == private.public_key().public_bytes(encoding, fmt)
