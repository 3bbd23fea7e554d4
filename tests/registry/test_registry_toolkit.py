"""The registry with the toolkit's plugin server."""

from __future__ import annotations

from pathlib import Path

import grpc

from meshkit.config import MeshConfig
from meshkit.server import PluginServer
from plugmesh.registry.v1 import registry_pb2, registry_pb2_grpc
from plugmesh.users.v1 import users_pb2
from tests.support.registry import (
    StartRegistry,
)
from tests.support.unimplemented import unimplemented
from tests.support.waiting import eventually

SECRET = "mesh-secret"


async def test_toolkit_plugin_registers_with_the_secret_and_serves(
    start_registry: StartRegistry, tmp_path: Path
) -> None:
    registry = await start_registry(registration_secret=SECRET)
    mesh = MeshConfig.from_env(
        {
            "PLUGMESH_REGISTRY_ADDRESS": registry.address,
            "PLUGMESH_REGISTRATION_SECRET": SECRET,
            "PLUGMESH_DATA_DIR": str(tmp_path),
            "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.2",
        }
    )
    plugin = PluginServer(
        "users",
        [unimplemented(users_pb2.DESCRIPTOR.services_by_name["UserService"])],
        address="127.0.0.1:0",
        config=mesh,
    )
    await plugin.start()
    try:
        async with grpc.aio.insecure_channel(registry.address) as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)

            async def serving() -> registry_pb2.Service | None:
                try:
                    got = await stub.GetService(
                        registry_pb2.GetServiceRequest(service="plugmesh.users.v1.UserService"),
                        metadata=(("plugmesh-registration-secret", SECRET),),
                    )
                except grpc.aio.AioRpcError:
                    return None
                return (
                    got.service
                    if got.service.health == registry_pb2.HEALTH_STATUS_SERVING
                    else None
                )

            service = await eventually(serving, what="the users plugin serving")
            assert service.name == "users"
            assert [i.address for i in service.instances] == [plugin.address]
            assert ("GET", "/api/plugins/user-management/users") in {
                (r.method, r.path) for r in service.routes
            }
    finally:
        await plugin.stop()

    # The toolkit deregisters on stop; with its last instance gone the service is removed.
    assert [s.name for s in registry.registry.list_services()] == ["registry"]
