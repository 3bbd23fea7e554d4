"""The installed plugmesh package's version, the one version every part reports.

``plugmesh --version``, the gateway's registration and the MCP front's server and client
info all read it here, so a release changes one line in ``pyproject.toml`` and nothing
else.
"""

from __future__ import annotations

import importlib.metadata

__all__ = ["DISTRIBUTION", "package_version"]

#: The distribution name in ``pyproject.toml``.
DISTRIBUTION = "plugmesh"
#: Reported when the code runs from a checkout that was never installed: no metadata.
_UNINSTALLED = "0+unknown"


def package_version() -> str:
    """The installed ``plugmesh`` distribution's version (``0+unknown`` when not installed)."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return _UNINSTALLED
