"""Fixtures: the auth mesh and the Node test plugin in it (each module's gateway
federates ``up``)."""

from __future__ import annotations

from tests.gateway.auth import conftest as _auth_fixtures

auth_mesh = _auth_fixtures.auth_mesh
node_plugin = _auth_fixtures.node_plugin
