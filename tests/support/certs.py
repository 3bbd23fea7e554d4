"""A mesh CA in a temporary directory, and members' certificates signed by it."""

from __future__ import annotations

import datetime
from pathlib import Path

from launcher.certs import CertificateAuthority
from meshkit.tls import MeshTls

__all__ = ["TestCa"]


class TestCa:
    """A CA whose members' files live in ``directory``."""

    __test__ = False  # not a test class, despite its name

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.authority = CertificateAuthority.open(directory)

    def member(
        self,
        service: str,
        *,
        lifetime: datetime.timedelta = datetime.timedelta(days=1),
        extra_services: tuple[str, ...] = (),
    ) -> MeshTls:
        """A fresh certificate for ``service`` (rewrites its files when it has some)."""
        files = self.authority.write_member(
            self.directory, service, lifetime=lifetime, extra_services=extra_services
        )
        return MeshTls(files.cert_file, files.key_file, files.ca_file)
