"""deploy/k8s/mtls: every process gets a cert-manager certificate naming its service, and
its Deployment mounts it where PLUGMESH_TLS_* point."""

from __future__ import annotations

from typing import Any

import pytest

from launcher.processes import PROCESSES, ProcessSpec
from meshkit.tls_settings import MESH_SERVER_NAME, VARIABLES, identity_uri
from tests.deploy.files import K8S, load_documents, load_yaml

MTLS = K8S / "mtls"
KUSTOMIZATION: dict[str, Any] = load_yaml(MTLS / "kustomization.yaml")


def _documents(name: str) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = load_documents(MTLS / name)
    return documents


CERTIFICATES = {
    doc["metadata"]["name"]: doc
    for doc in _documents("certificates.yaml")
    if doc["kind"] == "Certificate"
}
PATCHES = {
    doc["metadata"]["name"]: doc
    for entry in KUSTOMIZATION["patches"]
    for doc in _documents(entry["path"])
}
BY_NAME = [pytest.param(spec, id=spec.name) for spec in PROCESSES]


def test_the_overlay_builds_on_the_base_and_names_files_that_exist() -> None:
    assert ".." in KUSTOMIZATION["resources"]
    for name in [*KUSTOMIZATION["resources"][1:], *(p["path"] for p in KUSTOMIZATION["patches"])]:
        assert (MTLS / name).is_file(), name


@pytest.mark.parametrize("spec", BY_NAME)
def test_each_process_has_a_certificate_naming_its_service(spec: ProcessSpec) -> None:
    certificate = CERTIFICATES[f"plugmesh-{spec.name}"]["spec"]

    assert identity_uri(spec.name) in certificate["uris"]
    assert MESH_SERVER_NAME in certificate["dnsNames"]
    assert {"server auth", "client auth"} <= set(certificate["usages"])
    assert certificate["secretName"] == f"plugmesh-{spec.name}-tls"


@pytest.mark.parametrize("spec", BY_NAME)
def test_each_deployment_mounts_its_secret_where_the_settings_point(spec: ProcessSpec) -> None:
    pod = PATCHES[spec.name]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [volume] = pod["volumes"]
    [mount] = container["volumeMounts"]
    env = {item["name"]: item["value"] for item in container["env"]}

    assert volume["secret"]["secretName"] == f"plugmesh-{spec.name}-tls"
    assert mount["name"] == volume["name"]
    files = {
        name: f"{mount['mountPath']}/{file}"
        for (name, _, _), file in zip(VARIABLES, ("tls.crt", "tls.key", "ca.crt"), strict=True)
    }
    assert {name: env[name] for name in files} == files
