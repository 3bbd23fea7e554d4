"""A whole mesh in one process for the authentication tests: nats-server, registry,
machine-users, users and audit plugins, and the gateway with its authentication, every
server on a free port and every state file under one data dir.

:func:`running_mesh` starts it; :class:`Mesh` gives the tests tokens (an admin machine
user, a plain one), JWTs, and clients of both gateway ports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt

from gateway.app import Gateway
from gateway.auth import AuthSettings
from gateway.config import GatewayConfig
from launcher.natsd import NatsServer
from meshkit.config import MeshConfig, metrics_variable
from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from meshkit.logging import JsonFormatter
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2
from registry.app import RegistryServer
from registry.config import RegistryConfig
from services.audit.app import AuditPlugin
from services.audit.app import build as build_audit
from services.audit.config import AuditConfig
from services.machineusers.app import MachineUsersPlugin
from services.machineusers.app import build as build_machine_users
from services.machineusers.config import MachineUsersConfig
from services.users.app import UsersPlugin
from services.users.app import build as build_users
from services.users.config import UsersConfig
from tests.gateway.conftest import FAST
from tests.registry.conftest import FAST_BACKOFF
from tests.support.waiting import eventually

SECRET = "gateway-auth-test-registration-secret"
JWT_SECRET = "gateway-auth-test-jwt-secret-of-32-bytes-or-more"
#: Long: invalidation must come from events, not from entries running out.
CACHE_TTL_SECONDS = 30.0
SERVICES = ("machine-users", "users", "audit")
_BOOTSTRAP = Identity(PrincipalKind.SERVICE, "auth-tests")


def person_jwt(subject: str, *, email: str = "", ttl_seconds: float = 300, **claims: Any) -> str:
    """An HS256 JWT the gateway accepts."""
    now = dt.datetime.now(dt.UTC)
    payload = {"sub": subject, "exp": now + dt.timedelta(seconds=ttl_seconds), **claims}
    if email:
        payload["email"] = email
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


@dataclass
class Mesh:
    """Everything a test may poke at."""

    data_dir: Path
    nats: NatsServer
    registry: RegistryServer
    machine_users: MachineUsersPlugin
    users: UsersPlugin
    audit: AuditPlugin
    gateway: Gateway
    http: httpx.AsyncClient
    channel: grpc.aio.Channel
    admin_token: str = field(default="", repr=False)
    user_token: str = field(default="", repr=False)
    user_machine_id: str = ""
    #: Every token the tests saw, for the leak scan.
    tokens: list[str] = field(default_factory=list, repr=False)

    @property
    def mesh_metadata(self) -> tuple[tuple[str, str], ...]:
        """Metadata of a mesh service calling a plugin directly."""
        key = signing_key(SECRET)
        assert key is not None
        return to_metadata(_BOOTSTRAP, key)

    def machine_users_stub(self, channel: grpc.aio.Channel) -> Any:
        """A MachineUserService stub on ``channel``."""
        return machineusers_pb2_grpc.MachineUserServiceStub(channel)

    async def create_machine_user(
        self,
        name: str,
        *,
        admin: bool = False,
        ttl_seconds: float | None = None,
        permissions: users_pb2.Permissions | None = None,
    ) -> machineusers_pb2.CreateMachineUserResponse:
        """Create a machine user straight at the plugin, as a mesh service, with
        ``permissions`` on MCP tools (none when None)."""
        user = machineusers_pb2.MachineUser(
            name=name,
            role=users_pb2.ROLE_ADMIN if admin else users_pb2.ROLE_USER,
            permissions=permissions,
        )
        if ttl_seconds is not None:
            user.ttl.FromTimedelta(dt.timedelta(seconds=ttl_seconds))
        async with grpc.aio.insecure_channel(self.machine_users.server.address) as channel:
            created: machineusers_pb2.CreateMachineUserResponse = await self.machine_users_stub(
                channel
            ).CreateMachineUser(
                machineusers_pb2.CreateMachineUserRequest(machine_user=user),
                metadata=self.mesh_metadata,
            )
        self.tokens.append(created.token)
        return created

    def bearer(self, token: str) -> dict[str, str]:
        """The HTTP header carrying ``token`` (remembered for the leak scan)."""
        if token not in self.tokens:
            self.tokens.append(token)
        return {"Authorization": f"Bearer {token}"}

    def leaks(self) -> list[str]:
        """Files under the data dir (logs included) holding a secret part of a token."""
        secrets = {_secret_part(token).encode() for token in self.tokens if token}
        found: list[str] = []
        for path in sorted(self.data_dir.rglob("*")):
            if not path.is_file():
                continue
            data = path.read_bytes()
            hits = sum(secret in data for secret in secrets)
            if hits:
                found.append(f"{path.relative_to(self.data_dir)}: {hits} token(s)")
        return found


def _secret_part(token: str) -> str:
    """What must never be stored: a machine token without the prefix and last four it
    may show; a JWT's signature."""
    if token.startswith("pmk_"):
        return token[12:-4]
    return token.rpartition(".")[2] or token


def _mesh_env(data_dir: Path, nats_url: str, registry_address: str) -> dict[str, str]:
    return {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRY_ADDRESS": registry_address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
        "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS": "50",
        "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS": "100",
        **{
            f"PLUGMESH_{name.upper().replace('-', '_')}_ADDRESS": "127.0.0.1:0" for name in SERVICES
        },
        # Every process serves its metrics, as under `plugmesh up` (tests/observability).
        **{metrics_variable(name): "127.0.0.1:0" for name in ("registry", "gateway", *SERVICES)},
    }


@contextlib.contextmanager
def logs_in(path: Path) -> Iterator[None]:
    """Every log record of this process, INFO and up (SQLAlchemy's statements with their
    parameters included), as JSON lines in ``path``. Not DEBUG: grpc's Cython layer logs
    at DEBUG while holding locks, which deadlocks with handlers in other threads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter("auth-tests"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


@contextlib.asynccontextmanager
async def running_mesh(
    data_dir: Path,
    extra_env: Mapping[str, str] | None = None,
    *,
    auth: AuthSettings | None = None,
) -> AsyncIterator[Mesh]:
    """Start the whole mesh, its logs in ``data_dir/logs``; stop it after. Every process
    reads ``extra_env`` besides the mesh's own settings (``OTEL_*``, say). The gateway
    authenticates with ``auth`` (default: HS256 JWTs signed with :data:`JWT_SECRET`)."""
    auth = auth or AuthSettings(jwt_hs256_secret=JWT_SECRET, cache_ttl_seconds=CACHE_TTL_SECONDS)
    with logs_in(data_dir / "logs" / "mesh.log"):
        async with _started(data_dir, extra_env or {}, auth) as mesh:
            yield mesh


@contextlib.asynccontextmanager
async def _started(
    data_dir: Path, extra_env: Mapping[str, str], auth: AuthSettings
) -> AsyncIterator[Mesh]:
    async with contextlib.AsyncExitStack() as stack:
        nats = await stack.enter_async_context(NatsServer(data_dir / "jetstream"))
        registry = RegistryServer(
            RegistryConfig(
                address="127.0.0.1:0",
                data_dir=data_dir,
                registration_secret=SECRET,
                shutdown_grace_seconds=0.2,
                reflection_timeout_seconds=2.0,
                mesh=MeshConfig.from_env(
                    {**extra_env, metrics_variable("registry"): "127.0.0.1:0"}
                ),
            ),
            health_backoff=FAST_BACKOFF,
        )
        await registry.start()
        stack.push_async_callback(registry.close)
        env = {**extra_env, **_mesh_env(data_dir, nats.url, registry.address)}
        machine_users = build_machine_users(MachineUsersConfig.from_env(env))
        users = build_users(UsersConfig.from_env(env))
        audit = build_audit(AuditConfig.from_env(env))
        for server in (machine_users.server, users.server, audit.server):
            await server.start()
            stack.push_async_callback(server.stop, 0)
        gateway = Gateway(
            GatewayConfig(
                grpc_address="127.0.0.1:0",
                http_address="127.0.0.1:0",
                mcp_servers_address="127.0.0.1:0",
                default_deadline_seconds=5.0,
                metrics_address="127.0.0.1:0",
                auth=auth,
                mesh=MeshConfig.from_env(env),
            ),
            registry_backoff=FAST,
        )
        await gateway.start()
        stack.push_async_callback(gateway.stop)
        http = httpx.AsyncClient(base_url=f"http://{gateway.http_address}", timeout=10.0)
        stack.push_async_callback(http.aclose)
        channel = grpc.aio.insecure_channel(gateway.grpc_address)
        stack.push_async_callback(channel.close)
        mesh = Mesh(data_dir, nats, registry, machine_users, users, audit, gateway, http, channel)
        await _everything_routed(mesh)
        admin = await mesh.create_machine_user("test-admin", admin=True)
        plain = await mesh.create_machine_user("test-plain")
        mesh.admin_token, mesh.user_token = admin.token, plain.token
        mesh.user_machine_id = plain.machine_user.machine_user_id
        yield mesh


async def _everything_routed(mesh: Mesh) -> None:
    async def ready() -> bool | None:
        catalog = mesh.gateway.catalog
        if not mesh.gateway.auth.events.live:
            return None
        for name in ("registry", *SERVICES):
            service = catalog.service(name)
            if service is None or not service.serving or service.schema is None:
                return None
        return True

    await eventually(ready, timeout_seconds=20, what="every service routed and NATS linked")
