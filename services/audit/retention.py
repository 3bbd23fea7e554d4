"""Retention: a background task that prunes entries older than the configured age.

Each pass removes the intact prefix of the chain recorded before ``now - retention``
(:meth:`AuditLog.prune`) and, when it removed anything, appends an
``audit.entries.pruned`` entry naming the anchor, so the chain itself records where it
now starts.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid

from meshkit.clock import SYSTEM_CLOCK, Clock
from services.audit.chain import format_time
from services.audit.core import AuditLog
from services.audit.model import Actor, ActorType, EntryDraft, Outcome, PruneResult

__all__ = ["PRUNED_ACTION", "Pruner"]

log = logging.getLogger(__name__)

PRUNED_ACTION = "audit.entries.pruned"


class Pruner:
    """Prunes the chain every ``interval_seconds``.

    Args:
        audit_log: The chain.
        retention: How long entries are kept, by record time.
        interval_seconds: Time between passes; the first runs at start.
        clock: Tells the time.
    """

    def __init__(
        self,
        audit_log: AuditLog,
        *,
        retention: dt.timedelta,
        interval_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._log = audit_log
        self._retention = retention
        self._interval = interval_seconds
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def prune_once(self) -> PruneResult:
        """Run one pass now; return what it removed."""
        cutoff = self._clock.now() - self._retention
        result = await self._log.prune(cutoff)
        if result.removed:
            await self._log.create(_pruned_entry(result, cutoff))
            log.info(
                "pruned audit entries",
                extra={"removed": result.removed, "through_sequence": result.through_sequence},
            )
        return result

    async def start(self) -> None:
        """Start the periodic task. Safe to call twice."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="plugmesh-audit-pruner")

    async def close(self) -> None:
        """Stop the task, cancelling a pass in progress. Safe to call twice."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # asyncio.wait does not raise the task's CancelledError; a cancellation of the
        # caller itself still propagates.
        await asyncio.wait([task])

    async def _run(self) -> None:
        while True:
            try:
                await self.prune_once()
            except Exception:
                log.exception("pruning the audit log failed; trying again next interval")
            await asyncio.sleep(self._interval)


def _pruned_entry(result: PruneResult, cutoff: dt.datetime) -> EntryDraft:
    return EntryDraft(
        entry_id=str(uuid.uuid4()),
        action=PRUNED_ACTION,
        actor=Actor(ActorType.SYSTEM, "audit"),
        outcome=Outcome.SUCCESS,
        details={
            "removed": result.removed,
            "throughSequence": result.through_sequence,
            "anchorHash": result.anchor_hash,
            "cutoffTime": format_time(cutoff),
        },
        source="/plugmesh/audit",
    )
