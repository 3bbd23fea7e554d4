"""Two users processes on one PostgreSQL database, behind the real registry and gateway:
the load is spread over both; one killed with SIGKILL under load costs no safe request;
started again, it re-registers and gets traffic again."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import httpx
import jwt
import pytest

from gateway.app import Gateway
from gateway.auth import AuthSettings
from gateway.config import GatewayConfig
from launcher.natsd import NatsServer
from meshkit.config import MeshConfig
from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from plugmesh.users.v1 import users_pb2, users_pb2_grpc
from registry.app import RegistryServer
from registry.config import RegistryConfig
from tests.gateway.conftest import FAST
from tests.postgres import postgres_database
from tests.registry.conftest import FAST_BACKOFF
from tests.support.waiting import until

ROOT = Path(__file__).resolve().parents[3]
SECRET = "users-replicas-test-secret"
JWT_SECRET = "users-replicas-test-jwt-secret-of-32-bytes-or-more"
WORKERS = 4
#: Requests an instance must serve in a phase to count as having got traffic.
ENOUGH = 10
#: Requests the survivor serves alone before the killed replica comes back.
ALONE = 100
#: How long each phase may take at most (generous: replicas start as processes).
WAIT_SECONDS = 60.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Replica:
    """One ``python -m services.users`` process on a fixed address, so a restart comes
    back where it was."""

    def __init__(self, env: dict[str, str], data_dir: Path) -> None:
        self.address = f"127.0.0.1:{_free_port()}"
        self._env = {**env, "PLUGMESH_USERS_ADDRESS": self.address}
        self._data_dir = data_dir
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = (self._data_dir / f"users-{self.address.rpartition(':')[2]}.log").open("ab")
        with log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "services.users",
                cwd=ROOT,
                env=self._env,
                stdout=log,
                stderr=log,
            )

    async def kill(self) -> None:
        """SIGKILL: no deregistration, no graceful anything."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), timeout=15)
            except TimeoutError:
                await self.kill()


class Load:
    """Workers reading one user through the gateway, counting the answers' statuses."""

    def __init__(self, http: httpx.AsyncClient, path: str, token: str) -> None:
        self.statuses: collections.Counter[int] = collections.Counter()
        self.failures: list[str] = []
        self._http, self._path = http, path
        self._headers = {"Authorization": f"Bearer {token}"}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            for _ in range(WORKERS):
                group.create_task(self._worker())

    def stop(self) -> None:
        self._stop.set()

    async def _worker(self) -> None:
        while not self._stop.is_set():
            response = await self._http.get(self._path, headers=self._headers)
            self.statuses[response.status_code] += 1
            if response.status_code != 200 and len(self.failures) < 5:
                self.failures.append(f"{response.status_code} {response.text}")


@contextlib.asynccontextmanager
async def registry_and_gateway(
    data_dir: Path, nats_url: str
) -> AsyncIterator[tuple[RegistryServer, Gateway, dict[str, str]]]:
    """The real registry and gateway, in this process; the environment plugins need."""
    registry = RegistryServer(
        RegistryConfig(
            address="127.0.0.1:0",
            data_dir=data_dir,
            registration_secret=SECRET,
            shutdown_grace_seconds=0.2,
            reflection_timeout_seconds=5.0,
            lease_seconds=3.0,
        ),
        health_backoff=FAST_BACKOFF,
    )
    await registry.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGMESH_")} | {
        "PLUGMESH_DATA_DIR": str(data_dir),
        "PLUGMESH_NATS_URL": nats_url,
        "PLUGMESH_REGISTRY_ADDRESS": registry.address,
        "PLUGMESH_REGISTRATION_SECRET": SECRET,
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS": "0.5",
    }
    gateway = Gateway(
        GatewayConfig(
            grpc_address="127.0.0.1:0",
            http_address="127.0.0.1:0",
            mcp_servers_address="127.0.0.1:0",
            default_deadline_seconds=5.0,
            auth=AuthSettings(jwt_hs256_secret=JWT_SECRET),
            mesh=MeshConfig.from_env(env),
        ),
        registry_backoff=FAST,
    )
    try:
        await gateway.start()
        try:
            yield registry, gateway, env
        finally:
            await gateway.stop()
    finally:
        await registry.close()


def serving_addresses(gateway: Gateway) -> set[str]:
    service = gateway.catalog.service("users")
    return {i.address for i in service.serving_instances} if service else set()


async def create_user(address: str, user_id: str) -> None:
    """Create a user straight at one instance, as a mesh service."""
    key = signing_key(SECRET)
    assert key is not None
    metadata = to_metadata(Identity(PrincipalKind.SERVICE, "replica-tests"), key)
    async with grpc.aio.insecure_channel(address) as channel:
        await users_pb2_grpc.UserServiceStub(channel).CreateUser(
            users_pb2.CreateUserRequest(
                user=users_pb2.User(user_id=user_id, email=f"{user_id}@example.com")
            ),
            metadata=metadata,
        )


@pytest.mark.timeout(180)
async def test_two_replicas_share_the_load_and_survive_one_killed_under_load(
    tmp_path: Path, nats_server: NatsServer, postgres_url: str
) -> None:
    token = jwt.encode({"sub": "alice", "exp": 2_000_000_000}, JWT_SECRET, algorithm="HS256")
    async with (
        postgres_database(postgres_url, "replicas") as database_url,
        registry_and_gateway(tmp_path, nats_server.url) as (_registry, gateway, env),
        httpx.AsyncClient(base_url=f"http://{gateway.http_address}", timeout=10.0) as http,
    ):
        env["PLUGMESH_DATABASE_URL"] = database_url
        replicas = [Replica(env, tmp_path), Replica(env, tmp_path)]
        try:
            for replica in replicas:
                await replica.start()
            both = {r.address for r in replicas}
            await until(
                lambda: serving_addresses(gateway) == both,
                timeout_seconds=WAIT_SECONDS,
                what="both replicas registered and serving",
            )
            await create_user(replicas[0].address, "alice")

            load = Load(http, "/v1/users/alice", token)
            running = asyncio.create_task(load.run())
            try:
                await served_at_least(gateway, both, ENOUGH, "both replicas serving reads")
                spread = gateway.upstreams.served

                victim, survivor = replicas[1], replicas[0]
                at_kill = gateway.upstreams.served.get(survivor.address, 0)
                await victim.kill()
                await until(
                    lambda: victim.address not in serving_addresses(gateway),
                    timeout_seconds=WAIT_SECONDS,
                    what="the killed replica out of rotation",
                )
                await served_at_least(
                    gateway, {survivor.address}, at_kill + ALONE, "the survivor carrying the load"
                )
                before_restart = gateway.upstreams.served.get(victim.address, 0)

                await victim.start()
                await until(
                    lambda: victim.address in serving_addresses(gateway),
                    timeout_seconds=WAIT_SECONDS,
                    what="the restarted replica registered and serving again",
                )
                await served_at_least(
                    gateway,
                    {victim.address},
                    before_restart + ENOUGH,
                    "the restarted replica getting traffic",
                )
            finally:
                load.stop()
                await asyncio.wait_for(running, timeout=30)
        finally:
            for replica in replicas:
                await replica.stop()

    assert all(spread.get(address, 0) >= ENOUGH for address in both), spread
    assert load.failures == [], load.statuses
    assert set(load.statuses) == {200}


async def served_at_least(gateway: Gateway, addresses: set[str], count: int, what: str) -> None:
    """Wait until each of ``addresses`` answered at least ``count`` calls in all."""

    def enough() -> bool:
        served = gateway.upstreams.served
        return all(served.get(address, 0) >= count for address in addresses)

    await until(enough, timeout_seconds=WAIT_SECONDS, what=what)
