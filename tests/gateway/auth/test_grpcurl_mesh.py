"""The real grpcurl binary against every service of a whole mesh, straight to each
plugin's own port and through the gateway's ingress, with and without credentials.

- reflection: ``list`` and ``describe`` work on every path, a token or not (reflection
  carries no data of the plugins);
- health: ``grpc.health.v1.Health/Check`` of each service answers SERVING on every path;
- calls: a method that needs a caller (an admin for users and machine-users) succeeds
  through the ingress with a token and is UNAUTHENTICATED there without one. Straight to
  a plugin, only an identity signed with the mesh secret counts (DESIGN §5,
  meshkit/identity.py): a bearer token is not read, so that caller is anonymous and
  refused, as is an identity sent to the ingress (the gateway drops it). The registry's
  reads too want that identity (or the registration secret) on its own port. Public
  methods answer everyone.

Each service by path by credential is its own test id.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from tests.gateway.auth.mesh import SECRET, Mesh
from tests.gateway.node import GREETER, NEEDS_NODE, NodePlugin
from tests.grpcurl import GRPCURL, Result, grpcurl

pytestmark = [
    *NEEDS_NODE,
    pytest.mark.skipif(not GRPCURL.exists(), reason="grpcurl is installed by `make`"),
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(120),
]

HEALTH = "grpc.health.v1.Health"
REFLECTION = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")
DIRECT, INGRESS = "direct", "ingress"
NONE, TOKEN, IDENTITY = "none", "token", "identity"
ADMIN = Identity(PrincipalKind.MACHINE, "grpcurl-admin", admin=True)


@dataclass(frozen=True)
class Service:
    """One mesh service: its gRPC name, where it listens, and its methods."""

    name: str
    full_name: str
    rpcs: tuple[str, ...]

    def address(self, auth_mesh: Mesh, node: NodePlugin) -> str:
        """The service's own port."""
        return {
            "registry": auth_mesh.registry.address,
            "users": auth_mesh.users.server.address,
            "audit": auth_mesh.audit.server.address,
            "machine-users": auth_mesh.machine_users.server.address,
            "mcp-servers": auth_mesh.gateway.mcp_servers.server.address,
            "node-greeter": node.address,
        }[self.name]


SERVICES = (
    Service(
        "registry",
        "plugmesh.registry.v1.RegistryService",
        (
            "RegisterInstance",
            "RenewLease",
            "DeregisterInstance",
            "GetService",
            "ListServices",
            "WatchServices",
            "GetServiceSchema",
            "ListEventServices",
            "CheckDependencies",
        ),
    ),
    Service(
        "users",
        "plugmesh.users.v1.UserService",
        (
            "CreateUser",
            "GetUser",
            "ListUsers",
            "UpdateUser",
            "DeleteUser",
            "UpdateUserPermissions",
            "CheckPermission",
        ),
    ),
    Service(
        "audit",
        "plugmesh.audit.v1.AuditService",
        (
            "ListAuditEntries",
            "GetAuditEntry",
            "CreateAuditEntry",
            "ExportAuditEntries",
            "VerifyAuditChain",
        ),
    ),
    Service(
        "machine-users",
        "plugmesh.machineusers.v1.MachineUserService",
        (
            "CreateMachineUser",
            "GetMachineUser",
            "ListMachineUsers",
            "UpdateMachineUser",
            "DeleteMachineUser",
            "RotateMachineUserToken",
            "CheckMachineUserPermission",
            "ValidateToken",
        ),
    ),
    Service(
        "mcp-servers",
        "plugmesh.mcp.v1.McpServerService",
        (
            "CreateServer",
            "GetServer",
            "ListServers",
            "UpdateServer",
            "DeleteServer",
            "ListServerTools",
            "RefreshServer",
            "ListHooks",
            "UpdateHook",
        ),
    ),
    Service("node-greeter", GREETER, ("SayHello", "SendGreeting")),
)
BY_NAME = {service.name: service for service in SERVICES}


@dataclass(frozen=True)
class Call:
    """One method called with grpcurl, and what its answer must show when it succeeds.

    grpcurl prints a field by its descriptor's ``json_name`` when there is one: the Python
    plugins' generated descriptors have none (snake_case), the Node plugin's have them as
    protoc writes them (lowerCamelCase).
    """

    id: str
    service: str
    method: str
    request: dict[str, Any]
    succeeded: Callable[[Any], bool]
    public: bool = False


CALLS = (
    Call(
        "registry-ListServices",
        "registry",
        "ListServices",
        {},
        lambda out: "node-greeter" in {s["name"] for s in out["services"]},
    ),
    Call(
        "users-ListUsers",
        "users",
        "ListUsers",
        {"page_size": 5},
        lambda out: isinstance(out.get("users", []), list),
    ),
    Call(
        "audit-VerifyAuditChain",
        "audit",
        "VerifyAuditChain",
        {},
        lambda out: out["intact"] is True,
    ),
    Call(
        "machine-users-ListMachineUsers",
        "machine-users",
        "ListMachineUsers",
        {},
        lambda out: "test-admin" in {user["name"] for user in out["machine_users"]},
    ),
    Call(
        "mcp-servers-ListServers",
        "mcp-servers",
        "ListServers",
        {},
        lambda out: isinstance(out.get("servers", []), list),
    ),
    Call(
        "node-greeter-SendGreeting",
        "node-greeter",
        "SendGreeting",
        {"name": "grpcurl"},
        lambda out: out["message"] == "Hello, grpcurl" and bool(out["eventId"]),
    ),
    Call(
        "node-greeter-SayHello-public",
        "node-greeter",
        "SayHello",
        {"name": "grpcurl", "excitement": 1},
        lambda out: out["message"] == "Hello, grpcurl!",
        public=True,
    ),
    Call(
        "machine-users-ValidateToken-public",
        "machine-users",
        "ValidateToken",
        {"token": "pmk_not-a-real-token"},
        lambda out: out.get("valid", False) is False,
        public=True,
    ),
)


def headers(auth_mesh: Mesh, credential: str) -> list[str]:
    """grpcurl ``-H`` arguments for a credential: none, the admin's bearer token, or an
    admin's identity signed with the mesh secret (what the gateway sends a plugin once it
    has validated an admin's token)."""
    if credential == TOKEN:
        auth_mesh.bearer(auth_mesh.admin_token)  # remembered for the leak scan
        return ["-H", f"authorization: Bearer {auth_mesh.admin_token}"]
    if credential == IDENTITY:
        key = signing_key(SECRET)
        assert key is not None
        metadata = to_metadata(ADMIN, key)
        return [arg for name, value in metadata for arg in ("-H", f"{name}: {value}")]
    return []


def target(auth_mesh: Mesh, node: NodePlugin, service: Service, path: str) -> str:
    """Where grpcurl connects."""
    return service.address(auth_mesh, node) if path == DIRECT else auth_mesh.gateway.grpc_address


def expected_to_succeed(call: Call, path: str, credential: str) -> bool:
    """What the design says about one call (see the module docstring)."""
    if call.public:
        return True
    if path == INGRESS:
        return credential == TOKEN
    return credential == IDENTITY


def cases(*credentials: str) -> list[Any]:
    """service by path by credential, each with its own id."""
    return [
        pytest.param(service, path, credential, id=f"{service.name}-{path}-{credential}")
        for service in SERVICES
        for path in (DIRECT, INGRESS)
        for credential in credentials
    ]


def ok(result: Result) -> str:
    """grpcurl's output, failing with its error when it did not succeed."""
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(("service", "path", "credential"), cases(NONE, TOKEN))
async def test_grpcurl_lists_the_service_with_health_and_reflection(
    auth_mesh: Mesh, node_plugin: NodePlugin, service: Service, path: str, credential: str
) -> None:
    address = target(auth_mesh, node_plugin, service, path)

    listed = set(ok(await grpcurl(*headers(auth_mesh, credential), address, "list")).split())

    if path == DIRECT:
        assert listed == {service.full_name, HEALTH, *REFLECTION}
    else:
        assert listed == {s.full_name for s in SERVICES} | {HEALTH, *REFLECTION}


@pytest.mark.parametrize(("service", "path", "credential"), cases(NONE, TOKEN))
async def test_grpcurl_describes_the_service_its_health_and_reflection(
    auth_mesh: Mesh, node_plugin: NodePlugin, service: Service, path: str, credential: str
) -> None:
    address = target(auth_mesh, node_plugin, service, path)
    options = headers(auth_mesh, credential)

    described, health, reflection = map(
        ok,
        await asyncio.gather(
            *(
                grpcurl(*options, address, "describe", name)
                for name in (service.full_name, HEALTH, REFLECTION[0])
            )
        ),
    )

    rpcs = {line.split()[1].split("(")[0] for line in described.splitlines() if "  rpc " in line}
    assert rpcs == set(service.rpcs)
    assert "option (.google.api.http)" in described
    assert "rpc Check ( .grpc.health.v1.HealthCheckRequest )" in health
    assert "rpc Watch" in health
    assert "rpc ServerReflectionInfo ( stream " in reflection


@pytest.mark.parametrize(("service", "path", "credential"), cases(NONE, TOKEN))
async def test_grpcurl_checks_the_health_of_the_service(
    auth_mesh: Mesh, node_plugin: NodePlugin, service: Service, path: str, credential: str
) -> None:
    request = json.dumps({"service": service.full_name})

    checked = await grpcurl(
        *headers(auth_mesh, credential),
        "-d",
        request,
        target(auth_mesh, node_plugin, service, path),
        f"{HEALTH}/Check",
    )

    assert json.loads(ok(checked)) == {"status": "SERVING"}


@pytest.mark.parametrize("credential", [NONE, TOKEN, IDENTITY])
@pytest.mark.parametrize("path", [DIRECT, INGRESS])
@pytest.mark.parametrize("call", CALLS, ids=[call.id for call in CALLS])
async def test_grpcurl_calls_the_service_as_its_access_says(
    auth_mesh: Mesh, node_plugin: NodePlugin, call: Call, path: str, credential: str
) -> None:
    service = BY_NAME[call.service]

    result = await grpcurl(
        *headers(auth_mesh, credential),
        "-d",
        json.dumps(call.request),
        target(auth_mesh, node_plugin, service, path),
        f"{service.full_name}/{call.method}",
    )

    if expected_to_succeed(call, path, credential):
        assert call.succeeded(json.loads(ok(result))), result.stdout
    else:
        assert result.returncode != 0, result.stdout
        assert "Code: Unauthenticated" in result.stderr
