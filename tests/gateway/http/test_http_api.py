"""The package's public API: what ``gateway.http`` exports exists and is documented."""

from __future__ import annotations

import gateway.http


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in gateway.http.__all__:
        exported = getattr(gateway.http, name)
        assert exported.__doc__, f"{name} has no docstring"
    assert sorted(gateway.http.__all__) == gateway.http.__all__
