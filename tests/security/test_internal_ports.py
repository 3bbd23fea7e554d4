"""The plugins' and the registry's own gRPC ports, reached directly (not through the
gateway), probed with no identity, with identity metadata signed by a key that is not
the mesh's, and with an admin's bearer token (which only the gateway understands)."""

from __future__ import annotations

import grpc
import pytest

from gateway.auth.access import access_of
from gateway.model import Method
from plugmesh.options.v1 import options_pb2
from tests.gateway.auth.mesh import Mesh
from tests.security.credentials import Caller, Callers
from tests.security.probes import PROBES
from tests.support.calls import call_empty

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


def _ports(mesh: Mesh) -> dict[str, str]:
    return {
        "registry": mesh.registry.address,
        "machine-users": mesh.machine_users.server.address,
        "users": mesh.users.server.address,
        "audit": mesh.audit.server.address,
    }


async def _code(address: str, method: Method, metadata: tuple[tuple[str, str], ...]) -> str:
    async with grpc.aio.insecure_channel(address) as channel:
        error = await call_empty(
            channel, method.path, server_streaming=method.server_streaming, metadata=metadata
        )
    return error.code().name if error is not None else "OK"


#: What a caller the mesh did not sign meets on a plugin's own port, by the method's
#: access: a public method serves anyone (as through the gateway); every other one wants
#: the mesh's signed identity (or, at the registry, the registration secret).
REFUSED = "UNAUTHENTICATED"


@pytest.mark.parametrize("caller", [Caller.ANONYMOUS, Caller.FORGED, Caller.ADMIN])
async def test_no_method_on_a_plugins_own_port_serves_a_caller_the_mesh_did_not_sign(
    auth_mesh: Mesh, callers: Callers, caller: Caller
) -> None:
    wrong: list[str] = []
    probed: set[str] = set()
    for service, address in _ports(auth_mesh).items():
        for method in auth_mesh.gateway.catalog.methods():
            if method.service != service or method.client_streaming:
                continue
            code = await _code(address, method, callers.metadata(caller))
            PROBES["internal"] += 1
            probed.add(service)
            public = access_of(method.descriptor) == options_pb2.ACCESS_PUBLIC
            if public == (code == REFUSED):
                wrong.append(f"{service} {method.full_name}: {code}")

    assert probed == set(_ports(auth_mesh))
    assert wrong == []


async def test_the_registry_answers_its_reads_to_a_caller_the_gateway_signed_for(
    auth_mesh: Mesh,
) -> None:
    method = auth_mesh.gateway.catalog.method("plugmesh.registry.v1.RegistryService.ListServices")
    assert method is not None

    code = await _code(auth_mesh.registry.address, method, auth_mesh.mesh_metadata)
    PROBES["internal"] += 1

    assert code == "OK"
