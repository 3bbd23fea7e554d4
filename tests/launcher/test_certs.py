"""The CA and certificates ``plugmesh up`` makes, and when it renews them."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509

from launcher.certs import LAUNCHER_IDENTITY, MeshCertificates, renewal_due
from launcher.up import UpSettings
from meshkit.config import ConfigError
from meshkit.tls_settings import MESH_SERVER_NAME

DAY = datetime.timedelta(days=1)


def _uris(path: Path) -> list[str]:
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return names.get_values_for_type(x509.UniformResourceIdentifier)


def test_each_process_gets_a_certificate_naming_its_services_with_a_private_key(
    tmp_path: Path,
) -> None:
    certificates = MeshCertificates(tmp_path, ("registry", "gateway"), lifetime=3 * DAY)

    issued = certificates.renew_due()

    assert issued == ["registry", "gateway", LAUNCHER_IDENTITY]
    assert _uris(tmp_path / "registry.crt") == ["spiffe://plugmesh/registry"]
    assert _uris(tmp_path / "gateway.crt") == [
        "spiffe://plugmesh/gateway",
        "spiffe://plugmesh/mcp-servers",
    ]
    certificate = x509.load_pem_x509_certificate((tmp_path / "gateway.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert MESH_SERVER_NAME in names.get_values_for_type(x509.DNSName)
    for key in ("ca.key", "registry.key", "gateway.key"):
        assert (tmp_path / key).stat().st_mode & 0o777 == 0o600, key
    assert certificates.renew_due() == [], "nothing is due right after issuing"


@pytest.mark.parametrize(
    ("elapsed", "due"),
    [
        pytest.param(0.5, False, id="half-way"),
        pytest.param(0.6, False, id="before-two-thirds"),
        pytest.param(0.7, True, id="after-two-thirds"),
        pytest.param(1.5, True, id="expired"),
    ],
)
def test_a_certificate_is_renewed_after_two_thirds_of_its_lifetime(
    tmp_path: Path, elapsed: float, due: bool
) -> None:
    MeshCertificates(tmp_path, ("users",), lifetime=3 * DAY).renew_due()
    certificate = x509.load_pem_x509_certificate((tmp_path / "users.crt").read_bytes())
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc

    assert renewal_due(tmp_path / "users.crt", now=start + (end - start) * elapsed) is due


def test_a_missing_certificate_is_due(tmp_path: Path) -> None:
    assert renewal_due(tmp_path / "absent.crt")


@pytest.mark.parametrize(
    ("value", "on"),
    [pytest.param(None, True, id="default-on"), pytest.param("off", False, id="off")],
)
def test_up_runs_mutual_tls_unless_turned_off(value: str | None, on: bool) -> None:
    env = {"PLUGMESH_MESH_TLS": value} if value else {}
    assert UpSettings.from_env(env).mesh_tls is on


def test_a_mesh_tls_setting_that_is_neither_on_nor_off_is_refused() -> None:
    with pytest.raises(ConfigError, match="PLUGMESH_MESH_TLS"):
        UpSettings.from_env({"PLUGMESH_MESH_TLS": "maybe"})
