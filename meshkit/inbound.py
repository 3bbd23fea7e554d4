"""The call a handler is serving, as far as the calls it makes in turn need to know it.

:class:`~meshkit.interceptors.MeshInterceptor` sets it around every handler; the
discovery client (:mod:`meshkit.discovery`) reads it, so that a plugin calling another
one passes on the caller's identity (the signed metadata the gateway sent, verbatim) and
never waits longer than the caller is willing to. The trace context has its own
contextvar (:mod:`meshkit.tracing`).

Like any contextvar it is inherited by the tasks a handler starts: work that outlives
the handler should run under ``enter_call(None)``, or its calls keep the handler's
deadline and identity.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextvars import ContextVar, Token
from dataclasses import dataclass

from meshkit.identity import IDENTITY_KEY, SIGNATURE_KEY

__all__ = ["InboundCall", "current_call", "enter_call", "leave_call"]

_FORWARDED = frozenset({IDENTITY_KEY, SIGNATURE_KEY})


@dataclass(frozen=True)
class InboundCall:
    """What outgoing calls inherit from the call being served.

    Attributes:
        identity: The caller's signed identity entries, as received (empty: anonymous).
        deadline: When the caller stops waiting, on the ``time.monotonic`` clock; ``None``
            without a deadline.
    """

    identity: tuple[tuple[str, str], ...] = ()
    deadline: float | None = None

    @classmethod
    def of(
        cls, metadata: Iterable[tuple[str, str | bytes]], time_remaining: float | None
    ) -> InboundCall:
        """The inbound call with ``metadata`` and ``time_remaining`` seconds left."""
        identity = tuple(
            (key, value) for key, value in metadata if key in _FORWARDED and isinstance(value, str)
        )
        deadline = None if time_remaining is None else time.monotonic() + time_remaining
        return cls(identity, deadline)

    def time_remaining(self) -> float | None:
        """Seconds until the deadline (at least 0), or ``None`` without one."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


_current: ContextVar[InboundCall | None] = ContextVar("plugmesh_inbound_call", default=None)


def current_call() -> InboundCall | None:
    """The call being served in this context, if any."""
    return _current.get()


def enter_call(call: InboundCall | None) -> Token[InboundCall | None]:
    """Make ``call`` current; undo with :func:`leave_call`."""
    return _current.set(call)


def leave_call(token: Token[InboundCall | None]) -> None:
    """Restore what was current before :func:`enter_call`."""
    _current.reset(token)
