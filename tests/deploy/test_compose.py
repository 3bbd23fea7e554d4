"""compose.yaml runs every process of the table, configured as the table says."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from launcher.addresses import split_address
from launcher.processes import PROCESSES, ProcessSpec, needed_variables
from meshkit.config import address_variable
from tests.deploy.files import (
    COMPOSE,
    ENV_EXAMPLE,
    KNOWN_VARIABLES,
    PROCESS_NAMES,
    REPLICATED,
    ROOT,
    SECRET_VARIABLES,
    address_owner,
    env_file,
    interpolate,
    listen_port,
    load_yaml,
    plugmesh_args,
    references,
    secret_exposed,
)

COMPOSE_FILE: dict[str, Any] = load_yaml(COMPOSE)
SERVICES: dict[str, Any] = COMPOSE_FILE["services"]
SECRETS = env_file(ENV_EXAMPLE)
by_process = pytest.mark.parametrize("spec", PROCESSES, ids=PROCESS_NAMES)


def raw_environment(service: str) -> dict[str, str]:
    """A service's environment as written (interpolations left in)."""
    assert service in SERVICES, f"compose.yaml has no service {service!r}"
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(name): str(value) for name, value in env.items()}


def environment(service: str) -> dict[str, str]:
    """A service's environment with the env file's values interpolated."""
    return {name: interpolate(value, SECRETS) for name, value in raw_environment(service).items()}


def service_of(spec: ProcessSpec) -> dict[str, Any]:
    assert spec.name in SERVICES, f"compose.yaml has no service {spec.name!r}"
    service: dict[str, Any] = SERVICES[spec.name]
    return service


def host_of_url(url: str) -> str:
    host = urlsplit(url).hostname
    assert host, f"{url} names no host"
    return host


def test_every_plugmesh_service_is_a_process_of_the_table() -> None:
    runs_image = {name for name, s in SERVICES.items() if "build" in s}
    assert runs_image == set(PROCESS_NAMES)


@by_process
def test_each_process_runs_as_plugmesh_serve_its_name(spec: ProcessSpec) -> None:
    args = plugmesh_args(service_of(spec)["command"])
    assert (args.command, args.name) == ("serve", spec.name)


def test_every_process_runs_the_one_image_built_from_the_dockerfile() -> None:
    images = {SERVICES[name].get("image") for name in PROCESS_NAMES if name in SERVICES}
    builds = {str(SERVICES[name].get("build")) for name in PROCESS_NAMES if name in SERVICES}
    assert len(images) == 1, images
    assert None not in images
    assert builds == {"."}
    assert (ROOT / "Dockerfile").is_file()


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_plugmesh_variable_set_is_in_the_table(service: str) -> None:
    unknown = {
        name
        for name in raw_environment(service)
        if name.startswith("PLUGMESH_") and name not in KNOWN_VARIABLES
    }
    assert not unknown, f"{service} sets variables missing from launcher.processes.ENVIRONMENT"


@by_process
def test_each_process_gets_every_variable_it_needs(spec: ProcessSpec) -> None:
    service_of(spec)
    env = environment(spec.name)
    missing = [name for name in needed_variables(spec) if not env.get(name)]
    assert not missing, f"compose service {spec.name} lacks {missing}"


@by_process
def test_each_process_listens_where_other_containers_reach_it(spec: ProcessSpec) -> None:
    service_of(spec)
    env = environment(spec.name)
    for variable in spec.address_vars:
        listen_port(spec, variable, env)


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_addresses_of_other_processes_name_their_service_and_port(service: str) -> None:
    for variable, value in environment(service).items():
        owner = address_owner(variable)
        if owner is None or owner.name == service:
            continue
        host, port = split_address(value)
        assert host == owner.name, f"{service}: {variable}={value} should name {owner.name}"
        assert port == listen_port(owner, variable, environment(owner.name))


def test_the_gateway_publishes_its_grpc_and_http_ports() -> None:
    gateway = next(spec for spec in PROCESSES if spec.name == "gateway")
    published = {
        int(str(mapping).rpartition(":")[2]) for mapping in service_of(gateway).get("ports", [])
    }
    front_door = (gateway.grpc_address_var, address_variable("gateway-http"))
    wanted = {listen_port(gateway, v, environment("gateway")) for v in front_door}
    assert wanted <= published


def test_only_the_gateway_publishes_ports() -> None:
    publishing = {name for name in PROCESS_NAMES if SERVICES.get(name, {}).get("ports")}
    assert publishing == {"gateway"}


@by_process
def test_each_process_waits_for_what_it_uses_to_be_healthy(spec: ProcessSpec) -> None:
    env = environment(spec.name)
    wanted = set()
    if spec.name != "registry":
        wanted.add(split_address(env["PLUGMESH_REGISTRY_ADDRESS"])[0])
    if spec.uses_nats:
        wanted.add(host_of_url(env["PLUGMESH_NATS_URL"]))
    if spec.uses_database:
        wanted.add(host_of_url(env["PLUGMESH_DATABASE_URL"]))
    depends = service_of(spec).get("depends_on") or {}
    assert set(depends) == wanted
    for name in wanted:
        assert depends[name] == {"condition": "service_healthy"}, name
        assert "healthcheck" in SERVICES[name], f"{name} has no health check to wait for"


@by_process
def test_each_process_is_checked_with_plugmesh_health(spec: ProcessSpec) -> None:
    test = service_of(spec)["healthcheck"]["test"]
    assert test[:2] == ["CMD", "plugmesh"], test
    args = plugmesh_args(test[2:])
    assert (args.command, args.name) == ("health", spec.name)


def test_each_process_has_its_own_database() -> None:
    users = [spec for spec in PROCESSES if spec.uses_database and spec.name in SERVICES]
    databases = {
        spec.name: urlsplit(environment(spec.name)["PLUGMESH_DATABASE_URL"]).path.strip("/")
        for spec in users
    }
    assert len(set(databases.values())) == len(users), databases
    init = (ROOT / "deploy" / "postgres" / "init.sql").read_text()
    created = set(re.findall(r"CREATE DATABASE (\w+)", init))
    assert set(databases.values()) <= created


def test_the_database_password_is_the_one_postgres_gets() -> None:
    postgres = {
        host_of_url(environment(s.name)["PLUGMESH_DATABASE_URL"])
        for s in PROCESSES
        if s.uses_database
    }
    assert len(postgres) == 1
    (server,) = postgres
    password = environment(server)["POSTGRES_PASSWORD"]
    for spec in PROCESSES:
        if spec.uses_database and spec.name in SERVICES:
            assert urlsplit(environment(spec.name)["PLUGMESH_DATABASE_URL"]).password == password


def test_nats_runs_jetstream_on_a_volume() -> None:
    hosts = {
        host_of_url(environment(s.name)["PLUGMESH_NATS_URL"]) for s in PROCESSES if s.uses_nats
    }
    assert len(hosts) == 1
    nats = SERVICES[hosts.pop()]
    assert str(nats["image"]).split(":")[0] == "nats"
    assert "-js" in nats["command"]
    store = nats["command"][nats["command"].index("-sd") + 1]
    assert any(str(v).split(":")[1] == store for v in nats["volumes"])


def test_the_replicated_plugin_runs_twice_and_registers_each_replica_apart() -> None:
    replicas = {
        name: SERVICES[name].get("deploy", {}).get("replicas", 1)
        for name in PROCESS_NAMES
        if name in SERVICES
    }
    assert replicas[REPLICATED] == 2
    for name, count in replicas.items():
        if count > 1:
            # One fixed advertised host would send every replica's traffic to one place.
            assert "PLUGMESH_ADVERTISE_HOST" not in raw_environment(name), name


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_secrets_come_only_from_the_env_file(service: str) -> None:
    for name, value in raw_environment(service).items():
        secret = name in SECRET_VARIABLES or re.search("PASSWORD|SECRET(?!S_GUARD_)", name)
        if secret:
            assert not secret_exposed(value), f"{service}: {name} is written out, not ${{…}}"
        for reference in references(value):
            assert reference in SECRETS or ":-" in value, f"{reference} not in .env.example"


def test_the_env_file_example_names_only_known_variables_and_is_the_only_env_file() -> None:
    plugmesh = {name for name in SECRETS if name.startswith("PLUGMESH_")}
    assert plugmesh <= KNOWN_VARIABLES
    assert plugmesh <= SECRET_VARIABLES
    assert ".env" in (ROOT / ".gitignore").read_text().split()
