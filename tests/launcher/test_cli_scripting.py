"""``plugmesh`` as scripts use it: ``--version``, ``status -o json``, ``config``.

Every command runs as the installed ``plugmesh`` console script in a subprocess, with no
``PLUGMESH_`` variable of the shell running pytest leaking in.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import timestamp_pb2

from launcher.processes import ENVIRONMENT
from launcher.status import STATUS_HEADERS, MeshView, status_document
from plugmesh.registry.v1 import registry_pb2
from tests.launcher.helpers import free_port
from tests.launcher.test_up import SERVICES, Up, _wait_ready, up

__all__ = ["up"]  # the fixture, shared with tests.launcher.test_up

PLUGMESH = Path(sys.executable).with_name("plugmesh")
PACKAGE_VERSION = importlib.metadata.version("plugmesh")


def plugmesh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``plugmesh`` console script with ``args`` and only the ``env`` variables of
    plugmesh; wait for it to end."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")}
    return subprocess.run(
        [str(PLUGMESH), *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=30,
        check=False,
    )


def test_version_prints_the_installed_package_version_and_exits_0() -> None:
    result = plugmesh("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"plugmesh {PACKAGE_VERSION}\n"


# --- status -o json ---------------------------------------------------------------------


@pytest.mark.timeout(120)
async def test_status_json_lists_the_registrys_services_as_the_table_does(up: Up) -> None:
    await _wait_ready(up)
    where = ("--data-dir", str(up.data_dir))

    as_json = plugmesh("status", "-o", "json", *where)
    as_table = plugmesh("status", *where)
    as_table_flag = plugmesh("status", "--output", "table", *where)

    assert as_json.returncode == as_table.returncode == as_table_flag.returncode == 0
    document = json.loads(as_json.stdout)
    assert document["registry"] == {
        "address": up.state()["addresses"]["PLUGMESH_REGISTRY_ADDRESS"],
        "health": "SERVING",
    }
    services = {service["name"]: service for service in document["services"]}
    assert sorted(services) == sorted(SERVICES)
    for service in services.values():
        assert service["health"] == "SERVING", service
        assert service["instances"], service
        for instance in service["instances"]:
            assert set(instance) == {"address", "version", "health", "lease"}
            assert instance["health"] == "SERVING", instance
            assert instance["lease"]["seconds_left"] > 0, instance
            assert instance["lease"]["expire_time"].endswith("Z"), instance
    # The version the gateway registers is the one `plugmesh --version` prints.
    assert [i["version"] for i in services["gateway"]["instances"]] == [PACKAGE_VERSION]

    # The table is unchanged: same header, one row per instance, the same facts (the
    # lease column counts down between the runs, so it is left out).
    lines = as_table.stdout.splitlines()
    assert lines[0].split() == " ".join(STATUS_HEADERS).split()
    from_json = [
        [service["name"], instance["version"], instance["address"], instance["health"]]
        for service in document["services"]
        for instance in service["instances"]
    ]
    assert [line.split()[:4] for line in lines[1:]] == from_json
    assert [line.split()[:4] for line in as_table_flag.stdout.splitlines()] == [
        line.split()[:4] for line in lines
    ]


@pytest.mark.parametrize("output", ["table", "json"])
def test_status_without_a_registry_exits_1_with_nothing_on_stdout(output: str) -> None:
    address = f"127.0.0.1:{free_port()}"

    result = plugmesh("status", "--registry", address, "-o", output, "--timeout", "1")

    assert result.returncode == 1
    assert result.stdout == ""
    assert f"cannot reach the registry at {address}" in result.stderr


def test_status_json_has_a_stable_shape_with_null_for_what_is_missing() -> None:
    expiry = timestamp_pb2.Timestamp(seconds=1_800_000_010)
    serving = registry_pb2.HEALTH_STATUS_SERVING
    services = [
        registry_pb2.Service(
            name="users",
            version="1.2.0",
            health=serving,
            instances=[
                registry_pb2.Instance(address="10.0.0.2:1", health=serving),
                registry_pb2.Instance(
                    address="10.0.0.1:1", version="1.3.0", health=serving, lease_expire_time=expiry
                ),
            ],
        ),
        registry_pb2.Service(name="audit", health=registry_pb2.HEALTH_STATUS_UNREACHABLE),
    ]

    document = status_document(
        MeshView("127.0.0.1:50050", "SERVING", services), now=1_800_000_013.5
    )

    assert document == {
        "registry": {"address": "127.0.0.1:50050", "health": "SERVING"},
        "services": [
            {"name": "audit", "version": None, "health": "UNREACHABLE", "instances": []},
            {
                "name": "users",
                "version": "1.2.0",
                "health": "SERVING",
                "instances": [
                    {
                        "address": "10.0.0.1:1",
                        "version": "1.3.0",
                        "health": "SERVING",
                        "lease": {"expire_time": "2027-01-15T08:00:10Z", "seconds_left": -3.5},
                    },
                    {
                        "address": "10.0.0.2:1",
                        "version": "1.2.0",
                        "health": "SERVING",
                        "lease": None,
                    },
                ],
            },
        ],
    }


# --- config -----------------------------------------------------------------------------

SECRET = "s3cr3t-that-must-never-be-printed"

#: Secrets set in the environment, with what ``plugmesh config`` must show instead.
SECRETS = {
    "PLUGMESH_REGISTRATION_SECRET": (SECRET, "****"),
    "PLUGMESH_GATEWAY_JWT_HS256_SECRET": (SECRET + "-jwt", "****"),
    "PLUGMESH_DATABASE_URL": (
        f"postgresql+psycopg://app:{SECRET}@db:5432/app",
        "postgresql+psycopg://app:****@db:5432/app",
    ),
    "PLUGMESH_REGISTRY_DATABASE_URL": (
        f"postgresql://db/registry?user=reg&password={SECRET}",
        "postgresql://db/registry?user=reg&password=****",
    ),
    "PLUGMESH_NATS_URL": (f"nats://{SECRET}@nats.example:4222", "nats://****@nats.example:4222"),
    # A collector's API key.
    "OTEL_EXPORTER_OTLP_HEADERS": (f"api-key={SECRET}", "****"),
}


def _config(output: str, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``plugmesh config -o <output>`` as {variable: {value, source}}, read from either format."""
    result = plugmesh("config", "-o", output, env=env)
    assert result.returncode == 0, result.stderr
    if output == "json":
        settings: dict[str, dict[str, Any]] = json.loads(result.stdout)["settings"]
        return settings
    header, *rows = result.stdout.splitlines()
    assert header.split() == ["VARIABLE", "VALUE", "SOURCE"]
    return {
        row.split()[0]: {"value": " ".join(row.split()[1:-1]), "source": row.split()[-1]}
        for row in rows
    }


@pytest.mark.parametrize("output", ["table", "json"])
def test_config_says_which_settings_come_from_the_environment_and_which_are_defaults(
    output: str,
) -> None:
    settings = _config(
        output, {"PLUGMESH_LOG_LEVEL": "DEBUG", "PLUGMESH_USERS_ADDRESS": "0.0.0.0:7001"}
    )

    assert list(settings) == [var.name for var in ENVIRONMENT], "every setting, in order"
    shown = {name: (s["value"], s["source"]) for name, s in settings.items()}
    assert shown["PLUGMESH_LOG_LEVEL"] == ("DEBUG", "environment")
    assert shown["PLUGMESH_USERS_ADDRESS"] == ("0.0.0.0:7001", "environment")
    assert shown["PLUGMESH_REGISTRY_LEASE_SECONDS"] == ("10", "default")


def test_a_blank_variable_counts_as_unset() -> None:
    settings = _config("json", {"PLUGMESH_LOG_LEVEL": "  "})

    assert settings["PLUGMESH_LOG_LEVEL"] == {"value": "INFO", "source": "default", "masked": False}


@pytest.mark.parametrize("output", ["table", "json"])
def test_config_never_prints_a_secret_set_in_the_environment(output: str) -> None:
    env = {name: value for name, (value, _) in SECRETS.items()}

    result = plugmesh("config", "-o", output, env=env)

    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    settings = _config(output, env)
    for name, (_, shown) in SECRETS.items():
        assert settings[name]["value"] == shown, name
        assert settings[name]["source"] == "environment", name
        if output == "json":
            assert settings[name]["masked"] is True, name


def test_a_reader_that_leaves_early_gets_no_traceback() -> None:
    with subprocess.Popen(
        [str(PLUGMESH), "config"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        # Closed before the command can write (it is still starting): its first write fails.
        process.stdout.close()
        stderr = process.stderr.read().decode()

    assert process.returncode == 141
    assert "Traceback" not in stderr
