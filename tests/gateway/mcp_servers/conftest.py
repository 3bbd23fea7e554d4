"""Fixtures: the authentication tests' whole mesh (``auth_mesh``), one per test module."""

from __future__ import annotations

from tests.gateway.auth import conftest as _auth_fixtures

auth_mesh = _auth_fixtures.auth_mesh
