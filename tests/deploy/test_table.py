"""The tables the deployment checks derive from say what those checks need."""

from __future__ import annotations

import re

from launcher.processes import ENVIRONMENT, PROCESSES

# Only `plugmesh up`'s embedded nats-server listens here; deployments run NATS themselves.
_NOT_DEPLOYED = frozenset({"PLUGMESH_NATS_ADDRESS"})


def test_every_address_variable_belongs_to_a_process() -> None:
    # A listen address that no ProcessSpec names would get no containerPort, Service port
    # or published port, and no deploy test would notice it.
    addresses = {v.name for v in ENVIRONMENT if v.name.endswith("_ADDRESS")} - _NOT_DEPLOYED
    owned = {variable for spec in PROCESSES for variable in spec.address_vars}
    assert addresses - owned == set(), "add these to their ProcessSpec.address_vars"


def test_every_variable_that_looks_secret_is_marked_secret() -> None:
    looks_secret = {
        v.name
        for v in ENVIRONMENT
        if re.search(r"SECRET(?!S_GUARD_)|PASSWORD|TOKEN|DATABASE_URL|PRIVATE", v.name)
    }
    marked = {v.name for v in ENVIRONMENT if v.secret}
    assert looks_secret - marked == set(), "mark these EnvVar(..., secret=True)"
