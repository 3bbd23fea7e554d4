"""Alembic revisions of this process's tables (see meshkit.migrations)."""
