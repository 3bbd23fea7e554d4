"""Entry point of the tool-pins plugin: ``python -m services.toolpins`` or
``plugmesh serve tool-pins``."""

from __future__ import annotations

import sys

from meshkit.server import run_from_env
from services.toolpins.app import build
from services.toolpins.config import SERVICE_NAME, ToolPinsConfig


def main() -> int:
    """Run the tool-pins plugin until SIGTERM or SIGINT."""
    return run_from_env(SERVICE_NAME, ToolPinsConfig.from_env, lambda config: build(config).server)


if __name__ == "__main__":
    sys.exit(main())
