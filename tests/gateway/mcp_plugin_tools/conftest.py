"""Fixtures: the auth mesh (its gateway federates ``up`` in each module)."""

from __future__ import annotations

from tests.gateway.auth import conftest as _auth_fixtures

auth_mesh = _auth_fixtures.auth_mesh
