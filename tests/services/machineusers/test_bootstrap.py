"""The first admin: made once into <data dir>/admin.token (0600), reused, repaired."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.natsd import NatsServer
from services.machineusers.bootstrap import (
    ADMIN_TOKEN_FILE,
    BOOTSTRAP_NAME,
    BootstrapError,
    ensure_admin,
)
from tests.services.machineusers.conftest import Running
from tests.services.machineusers.support import SECRET


async def _ensure(running: Running, data_dir: Path) -> tuple[bool, str]:
    admin = await ensure_admin(data_dir, running.plugin.server.address, SECRET)
    assert admin.path == data_dir / ADMIN_TOKEN_FILE
    assert admin.token not in repr(admin)
    return admin.created, admin.token


async def test_the_first_start_makes_an_admin_token_in_a_private_file(
    running: Running, tmp_path: Path
) -> None:
    created, token = await _ensure(running, tmp_path)

    path = tmp_path / ADMIN_TOKEN_FILE
    assert created
    assert path.read_text() == token + "\n"
    assert path.stat().st_mode & 0o777 == 0o600
    answer = await running.api.validate(token)
    assert answer.valid
    assert answer.machine_user.name == BOOTSTRAP_NAME
    assert answer.machine_user.role == 2  # ROLE_ADMIN
    # ... and may call every MCP tool (the gateway reads the flag from this answer).
    assert answer.machine_user.permissions.admin


async def test_later_starts_reuse_the_token(running: Running, tmp_path: Path) -> None:
    _, first = await _ensure(running, tmp_path)

    created, second = await _ensure(running, tmp_path)

    assert (created, second) == (False, first)
    listed = await running.api.list()
    assert [u.name for u in listed.machine_users].count(BOOTSTRAP_NAME) == 1


@pytest.mark.parametrize("damage", ["removed", "garbage", "rotated", "deleted", "expired"])
async def test_a_token_that_no_longer_works_is_replaced(
    running: Running, tmp_path: Path, damage: str
) -> None:
    _, old = await _ensure(running, tmp_path)
    path = tmp_path / ADMIN_TOKEN_FILE
    (user,) = [u for u in (await running.api.list()).machine_users if u.name == BOOTSTRAP_NAME]
    if damage == "removed":
        path.unlink()
    elif damage == "garbage":
        path.write_text("pmk_garbage\n")
    elif damage == "rotated":
        await running.api.rotate(user.machine_user_id)
    elif damage == "deleted":
        await running.api.delete(user.machine_user_id)
    else:
        running.clock.advance(days=366)  # past the default maximum lifetime

    created, new = await _ensure(running, tmp_path)

    assert created
    assert new != old
    assert (await running.api.validate(new)).valid
    assert not (await running.api.validate(old)).valid
    assert path.stat().st_mode & 0o777 == 0o600
    names = [u.name for u in (await running.api.list()).machine_users]
    assert names.count(BOOTSTRAP_NAME) == 1


async def test_without_the_right_secret_nothing_is_made(
    running: Running, tmp_path: Path, nats_server: NatsServer
) -> None:
    with pytest.raises(BootstrapError, match="UNAUTHENTICATED"):
        await ensure_admin(tmp_path, running.plugin.server.address, "not-the-secret")

    assert not (tmp_path / ADMIN_TOKEN_FILE).exists()
