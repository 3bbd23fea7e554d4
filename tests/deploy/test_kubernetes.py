"""deploy/k8s runs every process of the table, configured as the table says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from launcher.addresses import split_address
from launcher.processes import PROCESSES, ProcessSpec, needed_variables
from tests.deploy.files import (
    COMPOSE,
    DEPLOY,
    K8S,
    KNOWN_VARIABLES,
    PROCESS_NAMES,
    REPLICATED,
    SECRET_VARIABLES,
    address_owner,
    listen_port,
    load_documents,
    load_yaml,
    plugmesh_args,
)

KUSTOMIZATION: dict[str, Any] = load_yaml(K8S / "kustomization.yaml")
MANIFESTS: list[dict[str, Any]] = [
    doc
    for path in sorted(K8S.glob("*.yaml"))
    if path.name != "kustomization.yaml"
    for doc in load_documents(path)
]
by_process = pytest.mark.parametrize("spec", PROCESSES, ids=PROCESS_NAMES)


def objects(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in MANIFESTS if doc["kind"] == kind}


def container(spec: ProcessSpec) -> dict[str, Any]:
    deployments = objects("Deployment")
    assert spec.name in deployments, f"deploy/k8s has no Deployment {spec.name!r}"
    (only,) = deployments[spec.name]["spec"]["template"]["spec"]["containers"]
    found: dict[str, Any] = only
    return found


def service(spec: ProcessSpec) -> dict[str, Any]:
    services = objects("Service")
    assert spec.name in services, f"deploy/k8s has no Service {spec.name!r}"
    return services[spec.name]


def environment(spec: ProcessSpec) -> dict[str, Any]:
    """What the container's environment holds: ConfigMap values, then its own ``env``
    (a plain value, or the ``valueFrom`` mapping)."""
    env: dict[str, Any] = {}
    maps = objects("ConfigMap")
    for source in container(spec).get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"{spec.name}: no ConfigMap {name!r}"
        env.update(maps[name]["data"])
    for item in container(spec).get("env", []):
        env[item["name"]] = item["value"] if "value" in item else item["valueFrom"]
    return env


def plain(spec: ProcessSpec) -> dict[str, str]:
    return {k: v for k, v in environment(spec).items() if isinstance(v, str)}


def secret_value(reference: dict[str, Any]) -> str:
    ref = reference["secretKeyRef"]
    secrets = objects("Secret")
    assert ref["name"] in secrets, f"no Secret {ref['name']!r}"
    data: dict[str, str] = secrets[ref["name"]]["stringData"]
    assert ref["key"] in data, f"Secret {ref['name']} has no key {ref['key']!r}"
    return data[ref["key"]]


def test_the_kustomization_applies_every_manifest() -> None:
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(KUSTOMIZATION["resources"]) == files


@by_process
def test_each_process_has_a_deployment_and_a_service(spec: ProcessSpec) -> None:
    deployment = objects("Deployment").get(spec.name)
    assert deployment is not None, f"no Deployment {spec.name}"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service(spec)["spec"]["selector"].items() <= labels.items()


def test_every_deployment_and_service_is_a_process_of_the_table() -> None:
    assert set(objects("Deployment")) == set(PROCESS_NAMES)
    assert set(objects("Service")) == set(PROCESS_NAMES)


@by_process
def test_each_process_runs_as_plugmesh_serve_its_name(spec: ProcessSpec) -> None:
    assert "command" not in container(spec), "the image's ENTRYPOINT is plugmesh"
    args = plugmesh_args(container(spec)["args"])
    assert (args.command, args.name) == ("serve", spec.name)


def test_every_deployment_runs_the_image_of_the_dockerfile() -> None:
    compose_image = load_yaml(COMPOSE)["services"]["registry"]["image"]
    images = {container(spec)["image"] for spec in PROCESSES}
    assert images == {compose_image}


def test_every_plugmesh_variable_set_is_in_the_table() -> None:
    names = {name for spec in PROCESSES for name in environment(spec)}
    names |= {name for cm in objects("ConfigMap").values() for name in cm["data"]}
    unknown = {name for name in names if name not in KNOWN_VARIABLES}
    assert not unknown, "variables missing from launcher.processes.ENVIRONMENT"


@by_process
def test_each_process_gets_every_variable_it_needs(spec: ProcessSpec) -> None:
    env = environment(spec)
    missing = [name for name in needed_variables(spec) if not env.get(name)]
    assert not missing, f"Deployment {spec.name} lacks {missing}"


@by_process
def test_each_registered_process_advertises_its_pod_ip(spec: ProcessSpec) -> None:
    advertised = environment(spec).get("PLUGMESH_ADVERTISE_HOST")
    if spec.registers:
        assert advertised == {"fieldRef": {"fieldPath": "status.podIP"}}
    else:
        assert advertised is None


@by_process
def test_ports_agree_between_address_container_service_and_probes(spec: ProcessSpec) -> None:
    ports = {p["name"]: p["containerPort"] for p in container(spec)["ports"]}
    targets = {
        ports[s["targetPort"]] if isinstance(s["targetPort"], str) else s["targetPort"]
        for s in service(spec)["spec"]["ports"]
    }
    for variable in spec.address_vars:
        port = listen_port(spec, variable, plain(spec))
        assert port in ports.values(), f"{spec.name}: no containerPort {port} ({variable})"
        assert port in targets, f"Service {spec.name} does not reach port {port} ({variable})"
    grpc_port = listen_port(spec, spec.grpc_address_var, plain(spec))
    for probe in ("readinessProbe", "livenessProbe"):
        assert container(spec)[probe]["grpc"]["port"] == grpc_port, probe


@by_process
def test_addresses_of_other_processes_name_their_service_and_port(spec: ProcessSpec) -> None:
    for variable, value in plain(spec).items():
        owner = address_owner(variable)
        if owner is None or owner.name == spec.name:
            continue
        host, port = split_address(value)
        assert host == owner.name, f"{spec.name}: {variable}={value} should name {owner.name}"
        target = listen_port(owner, variable, plain(owner))
        by_port = {s["port"]: s["targetPort"] for s in service(owner)["spec"]["ports"]}
        named = {p["name"]: p["containerPort"] for p in container(owner)["ports"]}
        assert port in by_port, f"Service {owner.name} has no port {port}"
        assert named.get(by_port[port], by_port[port]) == target


@by_process
def test_secrets_come_only_from_the_secret(spec: ProcessSpec) -> None:
    for name, value in environment(spec).items():
        if name in SECRET_VARIABLES:
            assert isinstance(value, dict), f"{spec.name}: {name} is written out"
            assert "secretKeyRef" in value, f"{spec.name}: {name} is not from a Secret"
            secret_value(value)
    for config_map in objects("ConfigMap").values():
        assert not set(config_map["data"]) & SECRET_VARIABLES


def test_each_process_has_its_own_database() -> None:
    urls = {
        spec.name: secret_value(environment(spec)["PLUGMESH_DATABASE_URL"])
        for spec in PROCESSES
        if spec.uses_database
    }
    databases = {urlsplit(url).path for url in urls.values()}
    assert len(databases) == len(urls), urls


def test_the_gateway_holds_the_jwt_key() -> None:
    gateway = next(spec for spec in PROCESSES if spec.name == "gateway")
    secret_value(environment(gateway)["PLUGMESH_GATEWAY_JWT_HS256_SECRET"])


def test_the_replicated_plugin_runs_two_replicas() -> None:
    assert objects("Deployment")[REPLICATED]["spec"]["replicas"] == 2


@by_process
def test_each_process_runs_unprivileged(spec: ProcessSpec) -> None:
    pod = objects("Deployment")[spec.name]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container(spec)["securityContext"]["allowPrivilegeEscalation"] is False


def test_nats_is_the_helm_release_the_readme_installs_with_jetstream() -> None:
    deployed = [spec for spec in PROCESSES if spec.uses_nats and spec.name in objects("Deployment")]
    urls = {plain(spec)["PLUGMESH_NATS_URL"] for spec in deployed}
    assert len(urls) == 1
    host = urlsplit(urls.pop()).hostname
    readme = (DEPLOY / "README.md").read_text()
    install = re.search(r"helm install (\S+) nats/nats .*--values (\S+)", readme)
    assert install, "deploy/README.md has no `helm install … nats/nats … --values …`"
    assert install[1] == host
    values = load_yaml(Path(DEPLOY.parent / install[2]))
    assert values["config"]["jetstream"]["enabled"] is True
