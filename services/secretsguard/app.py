"""Wiring of the secrets-guard plugin: :func:`build` makes the process from its settings.

Two services on one port: its own ``SecretsGuardService`` (which declares the hook) and
``plugmesh.mcp.v1.ToolCallHookService`` (the hook). No database, no events.
"""

from __future__ import annotations

from meshkit.server import PluginServer, Servicer
from plugmesh.mcp.v1 import hooks_pb2, hooks_pb2_grpc
from plugmesh.secretsguard.v1 import secretsguard_pb2, secretsguard_pb2_grpc
from services.secretsguard.config import SERVICE_NAME, SecretsGuardConfig
from services.secretsguard.hook import SecretsGuardHook
from services.secretsguard.service import SecretsGuardServicer

__all__ = ["build"]


def build(config: SecretsGuardConfig, *, register: bool = True) -> PluginServer:
    """The plugin's server; nothing runs until ``start()``."""
    return PluginServer(
        SERVICE_NAME,
        [
            Servicer.of(
                secretsguard_pb2,
                "SecretsGuardService",
                secretsguard_pb2_grpc.add_SecretsGuardServiceServicer_to_server,
                SecretsGuardServicer(),
            ),
            Servicer.of(
                hooks_pb2,
                "ToolCallHookService",
                hooks_pb2_grpc.add_ToolCallHookServiceServicer_to_server,
                SecretsGuardHook(),
            ),
        ],
        address=config.address,
        config=config.mesh,
        register=register,
    )
