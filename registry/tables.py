"""The registry's tables: sqlmodel rows with metadata of their own, the migrations that
make them, and how rows read as the registry's records and back.

Only what registration declares is stored: each service's contract and each instance's
address, version and metadata.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Column, LargeBinary, MetaData
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from meshkit.migrations import Migrations
from registry.model import Dependency, HttpRoute, InstanceRecord, ServiceSpec

__all__ = [
    "MIGRATIONS",
    "InstanceRow",
    "ServiceRow",
    "instance_row",
    "metadata",
    "record_of",
    "service_row",
    "spec_of",
]


class _Table(SQLModel, registry=registry()):
    """Base of the registry's tables: their own metadata, not sqlmodel's global one."""


class ServiceRow(_Table, table=True):
    """A service's contract."""

    __tablename__ = "registry_services"

    name: str = Field(primary_key=True)
    version: str
    grpc_services: list[str] = Field(sa_column=Column(JSON, nullable=False))
    produces: list[str] = Field(sa_column=Column(JSON, nullable=False))
    consumes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    dependencies: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    routes: list[dict[str, str]] = Field(sa_column=Column(JSON, nullable=False))
    schema_bytes: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    schema_digest: str


class InstanceRow(_Table, table=True):
    """One registered instance."""

    __tablename__ = "registry_instances"

    instance_id: str = Field(primary_key=True)
    service: str = Field(index=True)
    address: str
    version: str
    metadata_: dict[str, str] = Field(sa_column=Column("metadata", JSON, nullable=False))
    register_time: datetime
    lease_expire_time: datetime


#: The registry's tables.
metadata: MetaData = _Table.metadata

#: The revisions that make them, applied when :class:`~registry.store.RegistryStore` opens.
MIGRATIONS = Migrations(Path(__file__).parent / "migrations", "alembic_version_registry", metadata)


def service_row(spec: ServiceSpec) -> ServiceRow:
    """The row that stores a service's contract."""
    return ServiceRow(
        name=spec.name,
        version=spec.version,
        grpc_services=list(spec.grpc_services),
        produces=list(spec.produces),
        consumes=list(spec.consumes),
        dependencies=[
            {"service": d.service, "version_range": d.version_range, "optional": d.optional}
            for d in spec.dependencies
        ],
        routes=[{"method": r.method, "path": r.path, "rpc": r.rpc} for r in spec.routes],
        schema_bytes=spec.schema,
        schema_digest=spec.schema_digest,
    )


def spec_of(row: ServiceRow) -> ServiceSpec:
    """The contract a row stores."""
    return ServiceSpec(
        name=row.name,
        version=row.version,
        grpc_services=tuple(row.grpc_services),
        produces=tuple(row.produces),
        consumes=tuple(row.consumes),
        dependencies=tuple(
            Dependency(str(d["service"]), str(d["version_range"]), bool(d["optional"]))
            for d in row.dependencies
        ),
        routes=tuple(HttpRoute(r["method"], r["path"], r["rpc"]) for r in row.routes),
        schema=row.schema_bytes,
        schema_digest=row.schema_digest,
    )


def instance_row(record: InstanceRecord) -> InstanceRow:
    """The row that stores an instance."""
    return InstanceRow(
        instance_id=record.instance_id,
        service=record.service,
        address=record.address,
        version=record.version,
        metadata_=dict(record.metadata),
        register_time=record.register_time,
        lease_expire_time=record.lease_expire_time,
    )


def record_of(row: InstanceRow) -> InstanceRecord:
    """The instance a row stores."""
    return InstanceRecord(
        instance_id=row.instance_id,
        service=row.service,
        address=row.address,
        version=row.version,
        metadata=dict(row.metadata_),
        register_time=row.register_time,
        lease_expire_time=row.lease_expire_time,
    )
