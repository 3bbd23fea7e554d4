from __future__ import annotations

import subprocess
import sys

import pytest

from launcher.processes import (
    ENVIRONMENT,
    PROCESSES,
    environment_table,
    needed_variables,
    process_named,
    process_names,
)


def test_every_address_variable_is_documented() -> None:
    documented = {variable.name for variable in ENVIRONMENT}
    used = {variable for process in PROCESSES for variable in process.address_vars}

    assert used <= documented
    assert {"PLUGMESH_NATS_URL", "PLUGMESH_NATS_ADDRESS", "PLUGMESH_DATA_DIR"} <= documented
    assert all(f"`{name}`" in environment_table() for name in documented)


def test_defaults_are_the_documented_addresses() -> None:
    defaults = {v.name: v.default for v in ENVIRONMENT if v.name.endswith("_ADDRESS")}

    assert defaults == {
        "PLUGMESH_NATS_ADDRESS": "127.0.0.1:4222",
        "PLUGMESH_REGISTRY_ADDRESS": "127.0.0.1:50050",
        "PLUGMESH_GATEWAY_GRPC_ADDRESS": "127.0.0.1:50051",
        "PLUGMESH_GATEWAY_HTTP_ADDRESS": "127.0.0.1:8080",
        "PLUGMESH_GATEWAY_MCP_SERVERS_ADDRESS": "127.0.0.1:50064",
        "PLUGMESH_USERS_ADDRESS": "127.0.0.1:50061",
        "PLUGMESH_AUDIT_ADDRESS": "127.0.0.1:50062",
        "PLUGMESH_MACHINE_USERS_ADDRESS": "127.0.0.1:50063",
        "PLUGMESH_SECRETS_GUARD_ADDRESS": "127.0.0.1:50065",
        "PLUGMESH_TOOL_PINS_ADDRESS": "127.0.0.1:50066",
        "PLUGMESH_REGISTRY_METRICS_ADDRESS": "127.0.0.1:9460",
        "PLUGMESH_GATEWAY_METRICS_ADDRESS": "127.0.0.1:9461",
        "PLUGMESH_USERS_METRICS_ADDRESS": "127.0.0.1:9462",
        "PLUGMESH_AUDIT_METRICS_ADDRESS": "127.0.0.1:9463",
        "PLUGMESH_MACHINE_USERS_METRICS_ADDRESS": "127.0.0.1:9464",
        "PLUGMESH_SECRETS_GUARD_METRICS_ADDRESS": "127.0.0.1:9465",
        "PLUGMESH_TOOL_PINS_METRICS_ADDRESS": "127.0.0.1:9466",
    }


def test_the_command_loads_no_process_but_their_settings() -> None:
    # `plugmesh health` is a container's health check: reading the processes' default
    # addresses must not load gRPC, NATS or a database driver.
    heavy = "{'grpc', 'nats', 'sqlalchemy', 'uvicorn'}"
    code = f"import sys, launcher.cli; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"


def test_serve_knows_nats_and_every_process_by_name() -> None:
    assert process_names() == (
        "nats",
        "registry",
        "gateway",
        "users",
        "audit",
        "machine-users",
        "secrets-guard",
        "tool-pins",
    )
    assert process_named("machine-users").module == "services.machineusers"
    with pytest.raises(KeyError):
        process_named("nope")


@pytest.mark.parametrize(
    ("name", "needed"),
    [
        pytest.param(
            "registry",
            {
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
                "PLUGMESH_DATABASE_URL",
            },
            id="registry",
        ),
        pytest.param(
            "gateway",
            {
                "PLUGMESH_GATEWAY_GRPC_ADDRESS",
                "PLUGMESH_GATEWAY_HTTP_ADDRESS",
                "PLUGMESH_GATEWAY_MCP_SERVERS_ADDRESS",
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
                "PLUGMESH_DATABASE_URL",
            },
            id="gateway",
        ),
        pytest.param(
            "audit",
            {
                "PLUGMESH_AUDIT_ADDRESS",
                "PLUGMESH_REGISTRY_ADDRESS",
                "PLUGMESH_REGISTRATION_SECRET",
                "PLUGMESH_NATS_URL",
                "PLUGMESH_DATABASE_URL",
            },
            id="plugin",
        ),
    ],
)
def test_a_process_on_its_own_needs_its_addresses_registry_secret_nats_and_database(
    name: str, needed: set[str]
) -> None:
    variables = needed_variables(process_named(name))

    assert set(variables) == needed
    assert len(variables) == len(needed), "each once"
    assert set(variables) <= {v.name for v in ENVIRONMENT}
