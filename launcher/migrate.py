"""``plugmesh migrate [NAME ...]``: bring processes' databases to their newest revision.

Each process also migrates its own database when it starts; this command is for doing it
ahead of a rollout (a Kubernetes job, a compose one-shot), and ``--check`` tells, without
changing anything, whether a database is behind (exit code 1).

The databases are those the environment configures (``PLUGMESH_DATABASE_URL``,
``PLUGMESH_REGISTRY_DATABASE_URL``, else the SQLite files in the data dir), so the
command sees what the processes would see. Without names it takes every process, which
suits one machine (a SQLite file each); where each process has its own
``PLUGMESH_DATABASE_URL`` (containers), name the one whose environment it runs in.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.engine import make_url

from meshkit.config import MeshConfig
from meshkit.db import Database
from meshkit.migrations import Migrations

__all__ = ["PROCESSES", "Target", "migrate", "targets"]

# Process name → the module holding its MIGRATIONS, and whether it also holds an outbox
# (every process that publishes events).
_CHAINS: dict[str, tuple[str, bool]] = {
    "registry": ("registry.tables", True),
    "gateway": ("gateway.mcpservers.tables", True),
    "users": ("services.users.tables", True),
    "machine-users": ("services.machineusers.tables", True),
    "audit": ("services.audit.tables", True),
    "tool-pins": ("services.toolpins.tables", True),
}

#: The processes that keep a database, in the order they are migrated.
PROCESSES = tuple(_CHAINS)


@dataclass(frozen=True)
class Target:
    """One process's database and the chains of revisions it holds."""

    process: str
    url: str
    chains: tuple[Migrations, ...]


def targets(env: Mapping[str, str], names: Sequence[str] = ()) -> list[Target]:
    """The databases of the processes ``names`` (default: all) as ``env`` configures them."""
    mesh = MeshConfig.from_env(env)
    events: Migrations = importlib.import_module("meshkit.events.tables").MIGRATIONS
    found = []
    for process in names or PROCESSES:
        module, has_outbox = _CHAINS[process]
        chain: Migrations = importlib.import_module(module).MIGRATIONS
        url = mesh.database_url_for(process)
        if process == "registry":
            url = env.get("PLUGMESH_REGISTRY_DATABASE_URL") or url
        found.append(Target(process, url, (events, chain) if has_outbox else (chain,)))
    return found


async def migrate(
    env: Mapping[str, str], out: TextIO, names: Sequence[str] = (), *, check: bool = False
) -> int:
    """Upgrade (or with ``check`` only inspect) the databases of ``names`` (default: all);
    print one line per chain.

    Returns:
        0 when every database is (now) at head; 1 with ``check`` when one is behind.
    """
    behind = False
    for target in targets(env, names):
        url = make_url(target.url)
        shown = url.render_as_string(hide_password=True)
        if check and _missing_sqlite_file(target.url):
            behind = True
            print(f"{target.process:<14} no database yet  {shown}", file=out)
            continue
        database = Database(url)
        try:
            if not check:
                await database.upgrade(*target.chains)
            for chain in target.chains:
                async with database.engine.connect() as connection:
                    current = await connection.run_sync(chain.current)
                head = chain.head()
                behind = behind or current != head
                state = "at head" if current == head else f"behind head {head}"
                print(
                    f"{target.process:<14} {chain.version_table:<30} {current or '-':<6} "
                    f"{state}  {shown}",
                    file=out,
                )
        finally:
            await database.close()
    return 1 if check and behind else 0


def _missing_sqlite_file(url: str) -> bool:
    parsed = make_url(url)
    name = parsed.database
    return parsed.get_backend_name() == "sqlite" and bool(name) and not Path(str(name)).exists()
