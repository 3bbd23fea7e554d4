"""The audit process's settings from the environment."""

from __future__ import annotations

import datetime as dt

import pytest

from launcher.processes import ENVIRONMENT
from meshkit.config import ConfigError
from services.audit.config import PRUNE_INTERVAL_SECONDS, RETENTION_DAYS, AuditConfig


def test_defaults_keep_every_entry() -> None:
    config = AuditConfig.from_env({"PLUGMESH_DATA_DIR": "/data"})
    assert config.retention is None
    assert config.prune_interval_seconds == 3600
    assert config.database_url == "sqlite:////data/audit.db"


def test_retention_and_interval_are_read() -> None:
    config = AuditConfig.from_env(
        {
            "PLUGMESH_AUDIT_RETENTION_DAYS": "90",
            "PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS": "60",
            "PLUGMESH_DATABASE_URL": "postgresql://db/audit",
            "PLUGMESH_EVENTS_FETCH_BATCH": "16",
        }
    )
    assert config.retention == dt.timedelta(days=90)
    assert config.prune_interval_seconds == 60
    assert config.database_url == "postgresql://db/audit"
    assert config.events.fetch_batch == 16


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("PLUGMESH_AUDIT_RETENTION_DAYS", "-1", id="negative-retention"),
        pytest.param("PLUGMESH_AUDIT_RETENTION_DAYS", "a year", id="not-a-number"),
        pytest.param("PLUGMESH_AUDIT_RETENTION_DAYS", "nan", id="nan"),
        pytest.param("PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS", "0", id="zero-interval"),
    ],
)
def test_unusable_values_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        AuditConfig.from_env({variable: value})


def test_the_settings_are_in_the_mesh_environment_table() -> None:
    documented = {variable.name: variable.default for variable in ENVIRONMENT}
    assert documented[RETENTION_DAYS] == "0"
    assert documented[PRUNE_INTERVAL_SECONDS] == "3600"
