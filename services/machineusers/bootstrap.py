"""The first admin: ``plugmesh up`` makes sure an admin machine token exists in the data dir.

On the first start there is no ``<data dir>/admin.token``: an admin machine user named
``bootstrap-admin`` is created (ROLE_ADMIN, and permissions with the admin flag: it may
call every MCP tool), its token written to that file (mode 0600) and printed once. Later
starts find the file and reuse it while the machine-users service still says it is a
valid admin token. When it is not (expired, rotated, deleted, or the file was removed),
``bootstrap-admin`` gets a new token (or, when it expired, is gone or lacks the admin
flag, is created again) and the file is replaced.

The caller proves itself to the machine-users service as the mesh service
``plugmesh-up`` (a signed identity, :mod:`meshkit.identity`), so no token is needed to
make the first one.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from meshkit.identity import Identity, PrincipalKind, signing_key, to_metadata
from meshkit.tls import MeshTls, dial
from plugmesh.machineusers.v1 import machineusers_pb2, machineusers_pb2_grpc
from plugmesh.users.v1 import users_pb2

__all__ = ["ADMIN_TOKEN_FILE", "BOOTSTRAP_NAME", "AdminToken", "BootstrapError", "ensure_admin"]

ADMIN_TOKEN_FILE = "admin.token"
BOOTSTRAP_NAME = "bootstrap-admin"
_CALLER = Identity(PrincipalKind.SERVICE, "plugmesh-up")
_DESCRIPTION = "Created by the first `plugmesh up`; its token is in <data dir>/admin.token."


class BootstrapError(Exception):
    """The admin token could not be made; the message says why."""


@dataclass(frozen=True)
class AdminToken:
    """The admin token ``plugmesh up`` hands over.

    Attributes:
        path: The file that holds it.
        created: Whether it is new (print it once) or was reused.
        token: The token itself.
    """

    path: Path
    created: bool
    token: str = field(repr=False)


async def ensure_admin(
    data_dir: Path,
    address: str,
    secret: str,
    *,
    timeout_seconds: float = 10.0,
    tls: MeshTls | None = None,
) -> AdminToken:
    """Reuse the admin token in ``data_dir``, or make one.

    Args:
        data_dir: Where ``admin.token`` lives.
        address: The machine-users service's gRPC address.
        secret: The mesh registration secret (signs the caller's identity).
        timeout_seconds: Deadline of each call.
        tls: Mutual TLS to the service (the launcher's own certificate); plaintext when
            ``None``.

    Raises:
        BootstrapError: The machine-users service refused or could not be reached.
    """
    key = signing_key(secret)
    if key is None:
        raise BootstrapError("no registration secret: cannot prove who makes the admin")
    path = data_dir / ADMIN_TOKEN_FILE
    async with dial(_dialable(address), tls) as channel:
        client = _Client(
            machineusers_pb2_grpc.MachineUserServiceStub(channel),
            to_metadata(_CALLER, key),
            timeout_seconds,
        )
        try:
            existing = _read(path)
            if existing and await client.is_admin_token(existing):
                return AdminToken(path, created=False, token=existing)
            token = await client.issue()
        except grpc.aio.AioRpcError as exc:
            raise BootstrapError(
                f"cannot make the admin token at {address}: {exc.code().name}: {exc.details()}"
            ) from None
    _write_private(path, token)
    return AdminToken(path, created=True, token=token)


@dataclass(frozen=True)
class _Client:
    """The machine-users calls of the bootstrap, as the mesh service ``plugmesh-up``."""

    stub: machineusers_pb2_grpc.MachineUserServiceAsyncStub
    metadata: tuple[tuple[str, str], ...]
    timeout_seconds: float

    async def is_admin_token(self, token: str) -> bool:
        """Whether ``token`` is a valid token of an admin machine user."""
        answer = await self.stub.ValidateToken(
            machineusers_pb2.ValidateTokenRequest(token=token), timeout=self.timeout_seconds
        )
        return answer.valid and _is_bootstrap_admin(answer.machine_user)

    async def issue(self) -> str:
        """A new token of ``bootstrap-admin``, rotated, or created (again) when needed."""
        found = await self._find()
        if found is not None and _is_bootstrap_admin(found):
            try:
                rotated = await self.stub.RotateMachineUserToken(
                    machineusers_pb2.RotateMachineUserTokenRequest(
                        machine_user_id=found.machine_user_id
                    ),
                    metadata=self.metadata,
                    timeout=self.timeout_seconds,
                )
                return rotated.token
            except grpc.aio.AioRpcError as exc:
                # Expired (by the service's clock): replaced below like a lost one.
                if exc.code() != grpc.StatusCode.FAILED_PRECONDITION:
                    raise
        if found is not None:
            await self.stub.DeleteMachineUser(
                machineusers_pb2.DeleteMachineUserRequest(
                    machine_user_id=found.machine_user_id, allow_missing=True
                ),
                metadata=self.metadata,
                timeout=self.timeout_seconds,
            )
        created = await self.stub.CreateMachineUser(
            machineusers_pb2.CreateMachineUserRequest(
                machine_user=machineusers_pb2.MachineUser(
                    name=BOOTSTRAP_NAME,
                    description=_DESCRIPTION,
                    role=users_pb2.ROLE_ADMIN,
                    # May call every tool of every MCP server.
                    permissions=users_pb2.Permissions(admin=True),
                )
            ),
            metadata=self.metadata,
            timeout=self.timeout_seconds,
        )
        return created.token

    async def _find(self) -> machineusers_pb2.MachineUser | None:
        page_token = ""
        while True:
            page = await self.stub.ListMachineUsers(
                machineusers_pb2.ListMachineUsersRequest(page_size=1000, page_token=page_token),
                metadata=self.metadata,
                timeout=self.timeout_seconds,
            )
            for user in page.machine_users:
                if user.name == BOOTSTRAP_NAME:
                    return user
            if not page.next_page_token:
                return None
            page_token = page.next_page_token


def _is_bootstrap_admin(user: machineusers_pb2.MachineUser) -> bool:
    """An admin of the API whose permissions allow every tool (an older bootstrap admin
    without the admin flag is replaced)."""
    return user.role == users_pb2.ROLE_ADMIN and user.permissions.admin


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise BootstrapError(f"cannot read {path}: {exc.strerror}") from None


def _write_private(path: Path, token: str) -> None:
    """Write ``token`` to ``path``, mode 0600 from the start, replacing it atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(token + "\n")
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o600)  # O_CREAT's mode does not apply to an existing file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise


def _dialable(address: str) -> str:
    host, _, port = address.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):
        return f"127.0.0.1:{port}"
    return address
