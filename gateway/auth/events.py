"""The gateway's NATS link for authentication: cache invalidation in, ``auth.failed`` out.

In: a core NATS subscription (not a durable consumer: every gateway replica must hear
every change) to ``machine_user.deleted``, ``machine_user.token_rotated`` and
``machine_user.updated``, which drop that machine user's cached tokens (so a new role or
new permissions apply to its next request, which validates the token again), and to
``user.*``, which drop that person's cached role. While the link is down the caches are
cleared and switched off, so no answer is trusted past a change the gateway could not
hear of; they come back on (empty) once the subscription is in place again.

Out: every refused authentication as an ``auth.failed`` event (actor anonymous, reason,
credential type, a fingerprint of the credential, never the credential), published on
``plugmesh.events.auth.failed`` with its id as ``Nats-Msg-Id`` and the refused
request's ``traceparent``, so the event stream
(and so the audit log) records it. Publishing is best effort and never delays or fails
the refusal: the gateway has no outbox, and an event that cannot be sent (NATS down) is
counted and dropped. A flood of refusals (someone trying tokens) is published at most
``failed_events_per_second`` a second, with bursts of ten times that; the rest are
counted (``suppressed``) and logged once a minute, so the audit log is not buried.

Out too: ``auth.login`` on the first request of each person's session
(:mod:`~gateway.auth.logins`), published in the background through JetStream with an
acknowledgement; one that did not get through is tried again on the session's next
request.

The link connects in the background (:func:`meshkit.events.connection.keep_connecting`:
trying again every second while NATS is away, even at the gateway's start) and reconnects
by itself; the gateway starts and serves without NATS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg

from gateway.auth.logins import Login, Logins
from meshkit.events import (
    EnvelopeError,
    UnknownEventType,
    build_event,
    parse_event,
    source_of,
    subject_of,
    unpack_payload,
)
from meshkit.events.connection import close_quietly, keep_connecting
from meshkit.tasks import cancel_and_wait
from meshkit.tls import MeshTls
from meshkit.tracing import current_trace
from plugmesh.events.v1 import auth_events_pb2, machine_user_events_pb2, user_events_pb2

__all__ = ["AuthEvents"]

log = logging.getLogger(__name__)

_MACHINE_USER_SUBJECTS = (
    subject_of("machine_user.deleted"),
    subject_of("machine_user.token_rotated"),
    subject_of("machine_user.updated"),
)
_USER_SUBJECTS = (subject_of("user.>"),)

Listener = Callable[[str], None]

_LOGIN_PUBLISH_TIMEOUT_SECONDS = 5.0
_SUPPRESSED_LOG_INTERVAL_SECONDS = 60.0


class TokenBucket:
    """Allows ``rate`` takes a second on average, ``burst`` at once."""

    def __init__(self, rate: float, *, burst: float) -> None:
        self._rate = rate
        self._burst = max(burst, 1.0)
        self._tokens = self._burst
        self._at = time.monotonic()

    def take(self) -> bool:
        """Take one token if there is one."""
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


class AuthEvents:
    """The NATS link of the gateway's authentication.

    Args:
        nats_url: Where NATS runs.
        on_machine_user: Called with a machine user id when its tokens must be dropped.
        on_user: Called with a user id when their cached role must be dropped.
        on_live: Called with True once invalidations are received, False when they
            may be missed.
        nats_tls: The certificate of its NATS connection over TLS; plaintext when ``None``.
    """

    def __init__(
        self,
        nats_url: str,
        *,
        on_machine_user: Listener,
        on_user: Listener,
        on_live: Callable[[bool], None],
        failed_events_per_second: float = 20.0,
        max_sessions: int = 10_000,
        nats_tls: MeshTls | None = None,
    ) -> None:
        self._url = nats_url
        self._nats_tls = nats_tls
        self._on_machine_user = on_machine_user
        self._on_user = on_user
        self._on_live = on_live
        self._nc: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._failures = TokenBucket(failed_events_per_second, burst=failed_events_per_second * 10)
        self._suppressed_since_log = 0
        self._suppressed_logged_at = 0.0
        self._logins = Logins(max_sessions)
        self._announcing: set[asyncio.Task[None]] = set()
        self.dropped = 0
        self.suppressed = 0

    @property
    def live(self) -> bool:
        """Whether invalidation events are being received."""
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        """Connect and subscribe in the background; returns at once. Idempotent."""
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._connect(), name="gateway-auth-nats")

    async def close(self) -> None:
        """Stop: cancel connecting, close the connection. Safe to call twice."""
        self._closed = True
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await cancel_and_wait(*self._announcing)
        nc, self._nc = self._nc, None
        self._on_live(False)
        if nc is not None:
            await close_quietly(nc)

    async def failed(self, payload: auth_events_pb2.AuthFailed) -> None:
        """Publish ``auth.failed``; dropped (and counted) when NATS is not connected.

        Beyond the rate limit the event is suppressed (counted, logged once a minute).
        """
        if not self._failures.take():
            self._suppress()
            return
        nc = self._nc
        if nc is None or not nc.is_connected:
            self.dropped += 1
            return
        event = build_event(payload, source=source_of("gateway"))
        trace = current_trace()
        headers = {"Nats-Msg-Id": event.id, **(trace.headers() if trace is not None else {})}
        try:
            await nc.publish(subject_of(event.type), event.SerializeToString(), headers=headers)
        except (nats.errors.Error, OSError) as exc:
            self.dropped += 1
            log.debug("auth.failed not published: %s", exc)

    def logged_in(self, login: Login, *, ip_address: str, user_agent: str) -> None:
        """Announce ``login`` in the background, unless it was already; returns at once."""
        if self._closed or not self._logins.claim(login):
            return
        payload = login.payload(ip_address=ip_address, user_agent=user_agent)
        task = asyncio.create_task(self._announce(login, payload), name="gateway-auth-login")
        self._announcing.add(task)
        task.add_done_callback(self._announcing.discard)

    async def _announce(self, login: Login, payload: auth_events_pb2.AuthLogin) -> None:
        announced = False
        try:
            nc = self._nc
            if nc is not None and nc.is_connected:
                event = build_event(
                    payload,
                    source=source_of("gateway"),
                    subject=f"users/{login.subject}",
                    event_id=login.event_id(),
                )
                await nc.jetstream().publish(
                    subject_of(event.type),
                    event.SerializeToString(),
                    headers={"Nats-Msg-Id": event.id},
                    timeout=_LOGIN_PUBLISH_TIMEOUT_SECONDS,
                )
                announced = True
        except (nats.errors.Error, nats.js.errors.Error, OSError) as exc:
            log.debug("auth.login not published yet: %s", exc)
        finally:
            self._logins.done(login, announced=announced)

    def _suppress(self) -> None:
        self.suppressed += 1
        self._suppressed_since_log += 1
        now = time.monotonic()
        if now - self._suppressed_logged_at >= _SUPPRESSED_LOG_INTERVAL_SECONDS:
            log.warning(
                "auth.failed events over the rate limit were not published",
                extra={"suppressed": self._suppressed_since_log},
            )
            self._suppressed_logged_at = now
            self._suppressed_since_log = 0

    async def _connect(self) -> None:
        # Until NATS can be had, authentication works uncached and without auth.failed
        # events; it is tried again until it can.
        nc = await keep_connecting(
            self._url,
            name="plugmesh-gateway",
            tls=self._nats_tls,
            ready=self._subscribe,
            on_disconnect=[lambda: self._on_live(False)],
            # nats-py has sent the subscriptions again; what was missed is forgotten.
            on_reconnect=[lambda: self._on_live(True)],
            unavailable_warning="the gateway's auth events cannot use NATS yet",
        )
        self._nc = nc
        self._on_live(True)
        log.info("gateway auth events connected", extra={"nats": "connected"})

    async def _subscribe(self, nc: Client) -> None:
        for subject in _MACHINE_USER_SUBJECTS + _USER_SUBJECTS:
            await nc.subscribe(subject, cb=self._received)
        await nc.flush()

    async def _received(self, msg: Msg) -> None:
        try:
            payload = unpack_payload(parse_event(msg.data))
        except (EnvelopeError, UnknownEventType) as exc:
            log.warning("an event the gateway cannot read: %s", exc)
            return
        if isinstance(
            payload,
            machine_user_events_pb2.MachineUserDeleted
            | machine_user_events_pb2.MachineUserTokenRotated
            | machine_user_events_pb2.MachineUserUpdated,
        ):
            self._on_machine_user(payload.machine_user.machine_user_id)
        elif isinstance(
            payload,
            user_events_pb2.UserCreated | user_events_pb2.UserUpdated | user_events_pb2.UserDeleted,
        ):
            self._on_user(payload.user.user_id)
        elif isinstance(payload, user_events_pb2.UserPermissionsUpdated):
            self._on_user(payload.user_id)
