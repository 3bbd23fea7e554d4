"""deploy/k8s runs every process of the table, configured as the table says."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from launcher.addresses import split_address
from launcher.migrate import PROCESSES as DATABASE_PROCESSES
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
PROBES = ("startupProbe", "livenessProbe", "readinessProbe")


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
    served = {listen_port(spec, v, plain(spec)) for v in spec.address_vars}
    served.discard(listen_port(spec, spec.metrics_address_var, plain(spec)))
    for probe in PROBES:
        action = container(spec)[probe]
        asked = (action.get("grpc") or action.get("httpGet") or {}).get("port", "")
        assert ports.get(asked, asked) in served, f"{spec.name}: {probe} asks port {asked}"


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


@by_process
def test_each_process_has_a_startup_liveness_and_readiness_probe(spec: ProcessSpec) -> None:
    found = container(spec)
    missing = [probe for probe in PROBES if probe not in found]
    assert not missing, f"{spec.name} has no {missing}"
    # The startup probe holds the others off; a fixed delay would guess instead.
    assert "initialDelaySeconds" not in found["livenessProbe"]


def _quantity(value: str | int) -> float:
    """A CPU or memory quantity as a number (cores, bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def all_containers() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for doc in MANIFESTS:
        template = doc.get("spec", {}).get("template")
        for item in (template or {}).get("spec", {}).get("containers", []):
            found.append((f"{doc['kind']}/{doc['metadata']['name']}/{item['name']}", item))
    return found


@pytest.mark.parametrize(("where", "item"), all_containers(), ids=[w for w, _ in all_containers()])
def test_each_container_requests_and_limits_cpu_and_memory(
    where: str, item: dict[str, Any]
) -> None:
    resources = item.get("resources", {})
    for resource in ("cpu", "memory"):
        request = resources.get("requests", {}).get(resource)
        limit = resources.get("limits", {}).get(resource)
        assert request, f"{where} requests no {resource}"
        assert limit, f"{where} sets no {resource} limit"
        assert _quantity(request) <= _quantity(limit), f"{where}: {resource} {request} > {limit}"


@by_process
def test_each_deployment_has_a_disruption_budget_that_lets_a_node_drain(spec: ProcessSpec) -> None:
    deployment = objects("Deployment")[spec.name]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [
        pdb
        for pdb in objects("PodDisruptionBudget").values()
        if pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1, f"{spec.name} has {len(budgets)} PodDisruptionBudgets"
    (budget,) = budgets
    replicas = deployment["spec"]["replicas"]
    unavailable = budget["spec"].get("maxUnavailable")
    if unavailable is None:
        unavailable = replicas - budget["spec"]["minAvailable"]
    # At least one pod may go (a drain never waits forever), and with replicas to spare
    # one stays.
    assert unavailable >= 1
    assert replicas == 1 or unavailable < replicas


def test_every_disruption_budget_selects_a_deployment() -> None:
    selected = {pdb["metadata"]["name"] for pdb in objects("PodDisruptionBudget").values()}
    assert selected == set(objects("Deployment"))


def migration_containers() -> dict[str, dict[str, Any]]:
    jobs = objects("Job")
    assert "migrate" in jobs, "deploy/k8s has no Job 'migrate'"
    template = jobs["migrate"]["spec"]["template"]["spec"]
    return {item["name"]: item for item in template["containers"]}


def test_the_migration_job_migrates_every_database_with_its_processes_url() -> None:
    found = migration_containers()
    assert set(found) == set(DATABASE_PROCESSES)
    by_name = {spec.name: spec for spec in PROCESSES}
    for name, item in found.items():
        args = plugmesh_args(item["args"])
        assert (args.command, args.names, args.check) == ("migrate", [name], False), name
        env = {e["name"]: e.get("valueFrom") for e in item["env"]}
        assert env["PLUGMESH_DATABASE_URL"] == environment(by_name[name])["PLUGMESH_DATABASE_URL"]
        assert item["image"] == container(by_name[name])["image"]


def test_the_migration_job_retries_and_cleans_up_after_itself() -> None:
    job = objects("Job")["migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in {"OnFailure", "Never"}
    assert job["spec"]["backoffLimit"] >= 1
    assert job["spec"]["ttlSecondsAfterFinished"] > 0
