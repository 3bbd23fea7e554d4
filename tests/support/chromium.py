"""Headless Chromium for the browser tests (the docs page, the console): Debian's binary
(tools/debian-packages.txt), driven by Playwright; Playwright's own browser downloads are
never used."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "keep_artifact"]

#: Flags this machine and CI need: no sandbox (root), no GPU, nothing fetched from outside.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def keep_artifact(path: Path, name: str) -> None:
    """Copy ``path`` into ``$PLUGMESH_ARTIFACTS_DIR`` as ``name``, when that is set."""
    artifacts = os.environ.get("PLUGMESH_ARTIFACTS_DIR")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
