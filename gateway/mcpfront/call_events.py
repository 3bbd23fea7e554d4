"""The gateway's call log: each tool call as ``tool.call.*`` events through its outbox.

A call is one ``tool.call.started`` and then one ``tool.call.completed`` or
``tool.call.failed`` (``plugmesh.events.v1``), sharing its ``call_id``, about the resource
``tools/<server>/<tool>``, in the call's trace. Each is committed before the call goes on
(the started event before the call is forwarded, the end before the answer is sent); the
relay publishes them afterwards, and the audit log records them.

Group commit: one writer task takes every event waiting when it is free and commits them
in one transaction, so concurrent calls share their commits instead of queueing for
SQLite's write lock one by one; alone, a call's event is committed at once.

How much of the arguments an event carries is a setting (:class:`CallArguments`,
``PLUGMESH_GATEWAY_MCP_CALL_ARGUMENTS``): by default their keys only, every value
replaced by ``"[redacted]"``, since arguments may hold anything a tool is given.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from gateway.mcpfront.call_log import CallNotRecorded, Completed, Outcome, ToolCall
from gateway.mcpfront.toolbox import Caller, CallerKind
from meshkit.db import Database
from meshkit.events import EventBus
from meshkit.identity import Identity, PrincipalKind, event_actor
from meshkit.tasks import cancel_and_wait
from plugmesh.events.v1 import event_pb2, tool_events_pb2

__all__ = ["ERROR_DOMAIN", "REDACTED", "CallArguments", "OutboxCallLog", "recorded_arguments"]

#: The ``ErrorInfo`` domain of a failed call's status.
ERROR_DOMAIN = "gateway.plugmesh"
#: What stands for an argument's value that is not recorded.
REDACTED = "[redacted]"


class CallArguments(enum.Enum):
    """How much of a call's arguments its ``tool.call.started`` event carries."""

    KEYS = "keys"
    """The argument names, every value replaced by :data:`REDACTED`."""
    FULL = "full"
    """The arguments as the caller sent them."""
    NONE = "none"
    """Nothing."""


def recorded_arguments(arguments: Mapping[str, Any], shown: CallArguments) -> dict[str, Any]:
    """What of ``arguments`` is recorded under ``shown``."""
    if shown is CallArguments.FULL:
        return dict(arguments)
    if shown is CallArguments.KEYS:
        # Only the top level: the keys of a nested object may be data themselves.
        return dict.fromkeys(arguments, REDACTED)
    return {}


_Payload = (
    tool_events_pb2.ToolCallStarted
    | tool_events_pb2.ToolCallCompleted
    | tool_events_pb2.ToolCallFailed
)
#: The most events one transaction commits.
_MAX_BATCH = 256


@dataclass
class _Pending:
    call: ToolCall
    payload: _Payload
    done: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class OutboxCallLog:
    """Records tool calls as events in the gateway's outbox.

    Args:
        database: The gateway's database, which holds the outbox.
        bus: The gateway's event bus (source ``gateway``).
        arguments: How much of the arguments the started event carries.
    """

    def __init__(
        self, database: Database, bus: EventBus, *, arguments: CallArguments = CallArguments.KEYS
    ) -> None:
        self._database = database
        self._bus = bus
        self._arguments = arguments
        self._pending: asyncio.Queue[_Pending] | None = None
        self._writer: asyncio.Task[None] | None = None

    async def close(self) -> None:
        """Stop the writer once every event given to it is committed. Safe to call twice."""
        if self._pending is not None:
            await self._pending.join()
        writer, self._writer = self._writer, None
        await cancel_and_wait(writer)

    async def started(self, call: ToolCall) -> None:
        """Commit ``tool.call.started``.

        Raises:
            CallNotRecorded: The outbox could not be written.
        """
        payload = tool_events_pb2.ToolCallStarted(
            actor=_actor(call.caller),
            call_id=call.call_id,
            server=call.server,
            tool=call.tool,
            session_id=call.session_id,
            decisions=[decision.message() for decision in call.decisions],
        )
        if self._arguments is not CallArguments.NONE:
            payload.arguments.update(recorded_arguments(call.arguments, self._arguments))
        await self._write(call, payload)

    async def finished(self, call: ToolCall, outcome: Outcome, *, duration_seconds: float) -> None:
        """Commit ``tool.call.completed`` or ``tool.call.failed``.

        Raises:
            CallNotRecorded: The outbox could not be written.
        """
        duration = duration_pb2.Duration()
        duration.FromNanoseconds(max(0, round(duration_seconds * 1e9)))
        payload: tool_events_pb2.ToolCallCompleted | tool_events_pb2.ToolCallFailed
        if isinstance(outcome, Completed):
            payload = tool_events_pb2.ToolCallCompleted(is_error=outcome.is_error)
        else:
            info = error_details_pb2.ErrorInfo(
                reason=outcome.reason, domain=ERROR_DOMAIN, metadata=dict(outcome.metadata)
            )
            detail = any_pb2.Any()
            detail.Pack(info)
            error = status_pb2.Status(
                code=outcome.code.value[0], message=outcome.message, details=[detail]
            )
            payload = tool_events_pb2.ToolCallFailed(error=error)
        payload.actor.CopyFrom(_actor(call.caller))
        payload.call_id = call.call_id
        payload.server = call.server
        payload.tool = call.tool
        payload.session_id = call.session_id
        payload.duration.CopyFrom(duration)
        payload.decisions.extend(decision.message() for decision in call.decisions)
        await self._write(call, payload)

    async def _write(self, call: ToolCall, payload: _Payload) -> None:
        if self._pending is None:
            self._pending = asyncio.Queue()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._keep_writing(), name="gateway-call-events")
        pending = _Pending(call, payload)
        self._pending.put_nowait(pending)
        # Shielded: a cancelled caller still waits for nothing, but the event is written.
        await asyncio.shield(pending.done)

    async def _keep_writing(self) -> None:
        queue = self._pending
        assert queue is not None
        while True:
            batch = [await queue.get()]
            while len(batch) < _MAX_BATCH and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                await self._commit(batch)
            except CallNotRecorded as exc:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_exception(exc)
            else:
                for pending in batch:
                    if not pending.done.done():
                        pending.done.set_result(None)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            async with self._database.transaction() as session:
                for pending in batch:
                    call = pending.call
                    subject = f"tools/{call.server}/{call.tool}" if call.server else ""
                    self._bus.publish(session, pending.payload, subject=subject, trace=call.trace)
        except Exception as exc:
            # Whatever stopped the write (the database, the disk), the events are not kept.
            # The driver's own error, not SQLAlchemy's text: that quotes the row's values.
            cause = getattr(exc, "orig", None) or exc
            raise CallNotRecorded(f"{type(exc).__name__}: {cause}") from exc


def _actor(caller: Caller) -> event_pb2.Actor:
    kind = PrincipalKind.USER if caller.kind is CallerKind.PERSON else PrincipalKind.MACHINE
    return event_actor(Identity(kind, caller.id, admin=caller.admin, email=caller.email))
