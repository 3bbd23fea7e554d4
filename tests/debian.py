"""Debian binaries some tests need (installed by `make debs` from tools/debian-packages.txt)."""

import os
import shutil

import pytest


def require_binary(name: str, path: str | None = None) -> str:
    """The path of `name` (looked up in `path`, default PATH); a test without it fails under
    CI and is skipped elsewhere."""
    found = shutil.which(name, path=path)
    if found is not None:
        return found
    message = f"{name} is not installed; `make debs` installs it (tools/debian-packages.txt)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
