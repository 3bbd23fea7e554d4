"""Versioned schemas: each process's tables evolve through Alembic revisions of its own.

A :class:`Migrations` names a directory of revision scripts and the version table that
records how far a database has come; every plugin, the registry and the event bus's
outbox/inbox each have one, with their own version table, because chains share a
database: the outbox/inbox lives in each plugin's database beside the plugin's tables::

    # services/users/tables.py
    MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_users",
                            metadata)
    # services/users/app.py: applied when the server starts, before the event bus
    # (which applies the outbox/inbox chain), and the database closed after both
    database.attach(server, MIGRATIONS)
    bus.attach(server)

Every plugin migrates this way (:meth:`meshkit.db.Database.attach`), and ``plugmesh
migrate`` runs the same chains ahead of a rollout (:meth:`meshkit.db.Database.upgrade`).

:meth:`Migrations.upgrade` brings a database to the newest revision in one transaction.
On PostgreSQL it first takes a transaction-scoped advisory lock named after the version
table, so processes starting at once take turns: the first migrates, the others find
the database at head. (On SQLite, :class:`meshkit.db.Database` begins every write with
``BEGIN IMMEDIATE``, which does the same.)

A database made before migrations existed (the tables created straight from the
metadata) has the tables but no version table: it is stamped with the first revision,
whose schema it has, and upgraded from there, so no data is lost.

A new revision is a module next to the others: ``revision``, ``down_revision`` and
``upgrade(op: Operations)``. It takes ``op`` as an argument instead of importing alembic's
global ``op`` proxy, because several chains may migrate at once in one process.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

__all__ = ["Migrations"]


@dataclass(frozen=True)
class Migrations:
    """One chain of revisions.

    Attributes:
        directory: The folder of revision modules.
        version_table: The table recording the revision a database is at; unique per
            chain, since chains may share a database.
        metadata: The tables the newest revision must have (what the code maps).
    """

    directory: Path
    version_table: str
    metadata: MetaData

    def script(self) -> ScriptDirectory:
        """The chain's revisions."""
        return ScriptDirectory(str(self.directory), version_locations=[str(self.directory)])

    def base(self) -> str:
        """The first revision: the schema of a database made before migrations existed."""
        [base] = self.script().get_bases()
        return str(base)

    def head(self) -> str:
        """The newest revision."""
        head = self.script().get_current_head()
        if head is None:
            raise RuntimeError(f"no revisions in {self.directory}")
        return head

    def current(self, connection: Connection) -> str | None:
        """The revision the database of ``connection`` is at; None before the first."""
        return self._context(connection).get_current_revision()

    def upgrade(self, connection: Connection, target: str = "head") -> None:
        """Bring the database to the newest revision (or to ``target``), inside the
        connection's transaction.

        The caller commits; a failed revision leaves nothing behind where the database
        has transactional DDL (PostgreSQL and SQLite both do).
        """
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self._key()})
        script = self.script()

        def steps(heads: Any, _context: MigrationContext) -> Any:
            return script._upgrade_revs(target, heads)

        context = self._context(connection, fn=steps)
        if not context.get_current_heads() and self._made_before_migrations(connection):
            context.stamp(script, self.base())
        # Each revision gets its own Operations: alembic's global ``op`` proxy would be
        # shared by chains migrating at once in one process (threads, or tasks).
        context.run_migrations(op=Operations(context))

    def differences(self, connection: Connection) -> list[Any]:
        """What differs between the database and :attr:`metadata`, as Alembic's
        autogenerate sees it; empty when the schema is what the code maps. Tables of
        other chains sharing the database are not looked at."""
        tables = set(self.metadata.tables)

        def ours(name: str | None, kind: str, _parent: Any) -> bool:
            return kind != "table" or name in tables

        context = self._context(connection, include_name=ours, compare_type=True)
        return list(compare_metadata(context, self.metadata))

    def _context(self, connection: Connection, **opts: Any) -> MigrationContext:
        opts = {"version_table": self.version_table, "target_metadata": self.metadata, **opts}
        return MigrationContext.configure(connection, opts=opts)

    def _made_before_migrations(self, connection: Connection) -> bool:
        existing = set(inspect(connection).get_table_names())
        return bool(existing & set(self.metadata.tables))

    def _key(self) -> int:
        # A stable signed 64-bit number per version table, as pg_advisory_xact_lock wants.
        return zlib.crc32(f"plugmesh:{self.version_table}".encode()) - 2**31
