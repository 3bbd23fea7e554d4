"""The plugmesh registry: which services run where, their contracts, and their health.

Run it with ``python -m registry``; embed it with :class:`RegistryServer`::

    server = RegistryServer(RegistryConfig(address="127.0.0.1:0", data_dir=path))
    await server.start()
    ...
    await server.close()
"""

from __future__ import annotations

from registry.app import RegistryServer
from registry.config import RegistryConfig
from registry.core import Registry
from registry.events import RegistryEvent, RegistryEventType

__all__ = [
    "Registry",
    "RegistryConfig",
    "RegistryEvent",
    "RegistryEventType",
    "RegistryServer",
]
