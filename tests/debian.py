"""Debian binaries some tests need (installed by `make debs` from tools/debian-packages.txt)."""

import os
import shutil

import pytest


def require_binary(name: str) -> str:
    """The path of `name`; a test without it fails under CI and is skipped elsewhere."""
    path = shutil.which(name)
    if path is not None:
        return path
    message = f"{name} is not installed; `make debs` installs it (tools/debian-packages.txt)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
