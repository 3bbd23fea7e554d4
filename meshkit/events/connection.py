"""Connecting to NATS: once within a deadline, or in the background until it works.

::

    nc = await connect_nats(url, name="plugmesh-audit", timeout_seconds=5)

    async def subscribe(nc: Client) -> None:
        await nc.subscribe("plugmesh.events.user.>", cb=received)
        await nc.flush()

    nc = await keep_connecting(url, name="plugmesh-gateway", ready=subscribe,
                               unavailable_warning="user events are not followed yet")

Either way, once connected the client reconnects by itself for ever (nats-py sends the
subscriptions again). A connection that failed (a timeout, a cancellation, a ``ready``
that raised) is closed before the error goes on, so neither a socket nor nats-py's tasks
are left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.client import Client

from meshkit.events.errors import EventError
from meshkit.tls import MeshTls, nats_options

__all__ = ["close_quietly", "connect_nats", "keep_connecting"]

log = logging.getLogger(__name__)

Callback = Callable[[], None]


async def connect_nats(
    url: str,
    *,
    name: str,
    timeout_seconds: float = 10.0,
    on_disconnect: Sequence[Callback] = (),
    on_reconnect: Sequence[Callback] = (),
    tls: MeshTls | None = None,
) -> Client:
    """Connect to NATS, retrying until ``timeout_seconds``; reconnect forever afterwards;
    over TLS with the member's certificate with ``tls``.

    Args:
        url: The NATS server.
        name: The connection's name, as the server's monitoring shows it.
        timeout_seconds: How long the first connection may take.
        on_disconnect: Called when the connection is lost, and when it is closed.
        on_reconnect: Called when a lost connection is back.
        tls: The member's certificate; plaintext when ``None``.

    Raises:
        EventError: No server answered in time.
    """
    client = Client()

    async def reconnected() -> None:
        log.info("NATS connection restored", extra={"nats": name})
        for callback in on_reconnect:
            callback()

    async def disconnected() -> None:
        if not (client.is_closed or client.is_draining):
            log.warning("NATS connection lost; reconnecting", extra={"nats": name})
        for callback in on_disconnect:
            callback()

    errors: list[Exception] = []

    async def error(exc: Exception) -> None:
        errors[:] = [exc]
        log.debug("NATS client error: %s", exc, extra={"nats": name})

    try:
        async with asyncio.timeout(timeout_seconds):
            # With max_reconnect_attempts=-1, nats-py also retries the first connect.
            await client.connect(
                url,
                name=name,
                # nats-py takes fractions of a second, though its hints say int.
                connect_timeout=min(2.0, timeout_seconds),  # type: ignore[arg-type]
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.25,  # type: ignore[arg-type]
                reconnected_cb=reconnected,
                disconnected_cb=disconnected,
                error_cb=error,
                drain_timeout=2,
                **nats_options(tls),
            )
    except TimeoutError:
        await close_quietly(client)
        detail = f": {errors[-1]}" if errors else ""
        raise EventError(
            f"cannot connect to NATS at {url} within {timeout_seconds:g}s{detail}"
        ) from None
    except BaseException:
        # Cancelled, or a bad URL or TLS setting: the half-made client may hold a socket
        # and nats-py's reading, flushing and ping tasks.
        await close_quietly(client)
        raise
    return client


async def keep_connecting(
    url: str,
    *,
    name: str,
    ready: Callable[[Client], Awaitable[None]],
    unavailable_warning: str,
    tls: MeshTls | None = None,
    on_disconnect: Sequence[Callback] = (),
    on_reconnect: Sequence[Callback] = (),
    retry_seconds: float = 1.0,
    attempt_seconds: float = 10.0,
) -> Client:
    """Connect to NATS and set the connection up with ``ready``, trying again every
    ``retry_seconds`` until both succeed; for a background task of its own.

    A failed try is closed; the first failure is logged as a warning
    (``unavailable_warning: <why>``), the next ones are not. The callbacks fire only once
    ``ready`` has succeeded: before that, nothing was set up to lose.

    Args:
        url: The NATS server.
        name: The connection's name, as the server's monitoring shows it.
        ready: Sets a new connection up (subscribes, makes a stream); what it raises
            (a NATS error, ``OSError``, ``ValueError``) makes the try fail.
        unavailable_warning: What is missing while NATS cannot be had.
        tls: The member's certificate; plaintext when ``None``.
        on_disconnect: Called when the connection is lost, and when it is closed.
        on_reconnect: Called when a lost connection is back (nats-py has subscribed
            again; what was published meanwhile was missed).
        retry_seconds: The pause after a failed try.
        attempt_seconds: How long connecting may take in one try, and then ``ready``.

    Returns:
        The connected client, set up; the caller closes it.
    """
    established = False

    def once_established(callbacks: Sequence[Callback]) -> tuple[Callback]:
        def call() -> None:
            if established:
                for callback in callbacks:
                    callback()

        return (call,)

    warned = False
    while True:
        failure: Exception
        try:
            client = await connect_nats(
                url,
                name=name,
                timeout_seconds=attempt_seconds,
                on_disconnect=once_established(on_disconnect),
                on_reconnect=once_established(on_reconnect),
                tls=tls,
            )
        except (EventError, nats.errors.Error, OSError, ValueError) as exc:
            failure = exc
        else:
            try:
                async with asyncio.timeout(attempt_seconds):
                    await ready(client)
            except (nats.errors.Error, OSError, ValueError) as exc:  # TimeoutError is an OSError
                await close_quietly(client)
                failure = exc
            except BaseException:
                await close_quietly(client)
                raise
            else:
                established = True
                return client
        if not warned:
            reason = str(failure) or type(failure).__name__
            log.warning("%s: %s", unavailable_warning, reason, extra={"nats": name})
            warned = True
        await asyncio.sleep(retry_seconds)


async def close_quietly(client: Client) -> None:
    """Close ``client`` whatever state it is in; a NATS error on the way is ignored.
    Safe to call twice."""
    # nats-py's close() needs the flush queue connect() makes before its first await; a
    # client without one never got that far and holds nothing.
    if client.is_closed or client._flush_queue is None:
        return
    with contextlib.suppress(nats.errors.Error, OSError):
        await client.close()
