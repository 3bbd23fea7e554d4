"""The mesh's certificate authority and its members' certificates, made with ``cryptography``.

``plugmesh up`` keeps them in ``<data dir>/tls/``: ``ca.crt`` and ``ca.key`` (the mesh
CA, mode 0600 for the key), and ``<process>.crt``/``<process>.key`` per process. Each
member's certificate names its service twice: as a URI SAN
``spiffe://plugmesh/<service>`` (the identity the registry checks at registration) and
as DNS SANs (``<service>.plugmesh.internal``, :data:`meshkit.tls.MESH_SERVER_NAME`,
``localhost``), with ``127.0.0.1`` and ``::1`` as IP SANs. Every member's certificate is
both a server and a client certificate.

Renewal rewrites a member's files in place (key first, then certificate, each
atomically); servers read them again on their next handshake and channels when they are
made (:mod:`meshkit.tls`).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from meshkit.tls_settings import MESH_SERVER_NAME, identity_uri

#: How long ``plugmesh up``'s CA lives.
CA_LIFETIME = datetime.timedelta(days=3650)
#: How long a member's certificate lives; it is renewed after two thirds of that.
MEMBER_LIFETIME = datetime.timedelta(days=7)


@dataclass(frozen=True)
class MemberFiles:
    """Where one member's certificate and key are, with the CA that signed them."""

    cert_file: Path
    key_file: Path
    ca_file: Path


class CertificateAuthority:
    """A CA certificate and its private key, which sign the members' certificates."""

    def __init__(self, certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
        self.certificate = certificate
        self._key = key

    @classmethod
    def create(
        cls, name: str = "plugmesh mesh CA", *, lifetime: datetime.timedelta = CA_LIFETIME
    ) -> CertificateAuthority:
        """A new self-signed CA."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @classmethod
    def load(cls, cert_file: Path, key_file: Path) -> CertificateAuthority:
        """The CA kept in ``cert_file`` and ``key_file``."""
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_file} does not hold an EC private key")
        return cls(certificate, key)

    @classmethod
    def open(cls, directory: Path) -> CertificateAuthority:
        """The CA in ``directory`` (``ca.crt``, ``ca.key``), created when absent."""
        cert_file, key_file = directory / "ca.crt", directory / "ca.key"
        if cert_file.exists() and key_file.exists():
            return cls.load(cert_file, key_file)
        authority = cls.create()
        directory.mkdir(parents=True, exist_ok=True)
        _write(key_file, authority.key_pem(), mode=0o600)
        _write(cert_file, authority.certificate_pem())
        return authority

    def certificate_pem(self) -> bytes:
        """The CA certificate, PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        """The CA key, PEM, unencrypted."""
        return _key_pem(self._key)

    def issue(
        self,
        service: str,
        *,
        lifetime: datetime.timedelta = MEMBER_LIFETIME,
        hosts: tuple[str, ...] = (),
        extra_services: tuple[str, ...] = (),
    ) -> tuple[bytes, bytes]:
        """A certificate for ``service`` and its key, both PEM.

        Args:
            service: The service name the certificate proves (``users``).
            lifetime: How long it is valid.
            hosts: Extra DNS names or IP addresses it is valid for.
            extra_services: Other services the same process serves and registers.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [
            *(x509.UniformResourceIdentifier(identity_uri(s)) for s in (service, *extra_services)),
            x509.DNSName(f"{service}.plugmesh.internal"),
            x509.DNSName(MESH_SERVER_NAME),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = _now()
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + lifetime)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM), _key_pem(key)

    def write_member(
        self,
        directory: Path,
        service: str,
        *,
        lifetime: datetime.timedelta = MEMBER_LIFETIME,
        extra_services: tuple[str, ...] = (),
    ) -> MemberFiles:
        """Issue a certificate for ``service`` (and ``extra_services``) into
        ``directory`` (``<service>.crt``, ``<service>.key``), replacing the files there."""
        certificate, key = self.issue(service, lifetime=lifetime, extra_services=extra_services)
        files = MemberFiles(
            directory / f"{service}.crt", directory / f"{service}.key", directory / "ca.crt"
        )
        directory.mkdir(parents=True, exist_ok=True)
        _write(files.key_file, key, mode=0o600)
        _write(files.cert_file, certificate)
        if not files.ca_file.exists():
            _write(files.ca_file, self.certificate_pem())
        return files


def renewal_due(cert_file: Path, *, now: datetime.datetime | None = None) -> bool:
    """Whether the certificate in ``cert_file`` is missing, unreadable or past two thirds
    of its lifetime."""
    try:
        certificate = x509.load_pem_x509_certificate(cert_file.read_bytes())
    except (OSError, ValueError):
        return True
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return (now or _now()) >= start + (end - start) * 2 / 3


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    # Atomically: a server reading the files mid-renewal sees the old one or the new one.
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
    os.chmod(partial, mode)
    os.replace(partial, path)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


#: The directory under the data dir that holds ``plugmesh up``'s CA and certificates.
TLS_DIR = "tls"
#: The identity of ``plugmesh up`` itself, which waits on the registry and makes the
#: first admin.
LAUNCHER_IDENTITY = "plugmesh-up"
#: Services a process serves besides its own name: the gateway serves ``mcp-servers``.
EXTRA_IDENTITIES: dict[str, tuple[str, ...]] = {"gateway": ("mcp-servers",)}


class MeshCertificates:
    """``plugmesh up``'s CA and one certificate per process in ``<data dir>/tls``.

    Args:
        directory: Where the files live (created with the CA on first use).
        names: The processes (and ``plugmesh-up``) that need a certificate.
        lifetime: How long each member's certificate lives.
    """

    def __init__(
        self,
        directory: Path,
        names: tuple[str, ...],
        *,
        lifetime: datetime.timedelta = MEMBER_LIFETIME,
    ) -> None:
        self.directory = directory
        self._names = (*names, LAUNCHER_IDENTITY)
        self._lifetime = lifetime
        self._authority = CertificateAuthority.open(directory)

    def renew_due(self, *, now: datetime.datetime | None = None) -> list[str]:
        """Issue a new certificate to every member whose one is missing or past two
        thirds of its lifetime; return their names."""
        renewed = [
            name for name in self._names if renewal_due(self.directory / f"{name}.crt", now=now)
        ]
        for name in renewed:
            self._issue(name)
        return renewed

    def files_of(self, name: str) -> MemberFiles:
        """Where member ``name``'s files are."""
        return MemberFiles(
            self.directory / f"{name}.crt",
            self.directory / f"{name}.key",
            self.directory / "ca.crt",
        )

    def env_for(self, name: str) -> dict[str, str]:
        """The ``PLUGMESH_TLS_*`` variables of process ``name``."""
        files = self.files_of(name)
        return {
            "PLUGMESH_TLS_CERT_FILE": str(files.cert_file),
            "PLUGMESH_TLS_KEY_FILE": str(files.key_file),
            "PLUGMESH_TLS_CA_FILE": str(files.ca_file),
        }

    def _issue(self, name: str) -> None:
        certificate, key = self._authority.issue(
            name, lifetime=self._lifetime, extra_services=EXTRA_IDENTITIES.get(name, ())
        )
        files = self.files_of(name)
        _write(files.key_file, key, mode=0o600)
        _write(files.cert_file, certificate)
