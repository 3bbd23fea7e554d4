"""The public names of meshkit.events, and the cost of importing its settings."""

from __future__ import annotations

import subprocess
import sys

import meshkit.events


def test_every_public_name_resolves() -> None:
    for name in meshkit.events.__all__:
        assert getattr(meshkit.events, name) is not None, name
    assert set(meshkit.events.__all__) == set(meshkit.events._WHERE)


def test_the_settings_load_without_nats_or_sqlalchemy() -> None:
    # The plugmesh command's table of variables imports the event settings.
    heavy = "{'nats', 'sqlalchemy'}"
    code = f"import sys, meshkit.events.settings; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert out.strip() == "[]"
