"""The plugmesh registry: which services run where, their contracts, and their health.

Run it with ``python -m registry``; embed it with :class:`RegistryServer`::

    server = RegistryServer(RegistryConfig(address="127.0.0.1:0", data_dir=path))
    await server.start()
    ...
    await server.close()
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.app import RegistryServer
    from registry.config import RegistryConfig
    from registry.core import Registry
    from registry.events import RegistryEvent, RegistryEventType

# Names are imported on first use (PEP 562), so that the launcher's table of processes
# reads registry.config without loading the registry's store, SQLAlchemy and gRPC.
_WHERE = {
    "Registry": "core",
    "RegistryConfig": "config",
    "RegistryEvent": "events",
    "RegistryEventType": "events",
    "RegistryServer": "app",
}

__all__ = [
    "Registry",
    "RegistryConfig",
    "RegistryEvent",
    "RegistryEventType",
    "RegistryServer",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
