"""Registry events: instances registered, deregistered, expired, and health changes.

The registry writes each event to the outbox of its database with the change it is
about (:mod:`registry.outbox`); the event bus's relay publishes it from there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from meshkit.tracing import TraceContext
from registry.model import Health, Instance


class RegistryEventType(enum.Enum):
    """The event types the registry produces, as declared in its contract."""

    REGISTERED = "registry.instance.registered"
    DEREGISTERED = "registry.instance.deregistered"
    HEALTH_CHANGED = "registry.instance.health_changed"
    EXPIRED = "registry.instance.expired"


@dataclass(frozen=True)
class RegistryEvent:
    """Something that happened to an instance."""

    type: RegistryEventType
    instance: Instance
    time: datetime
    previous_health: Health | None = None
    trace: TraceContext | None = None
    """The trace of the call that made the change, if one did."""
