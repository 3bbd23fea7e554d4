"""Every instance's lease, pushed by the registry as it is renewed, for the mesh view.

The gateway's catalog does not hear of renewals: an instance renews several times per
lease, and nothing a router cares about changes. The console wants them, to show when
each lease runs out unless renewed. So while at least one mesh page is open,
:class:`Leases` follows a second ``WatchServices`` stream of its own that asks for them
(``include_lease_renewals``), and tells its listeners after every change::

    leases = Leases(registry_address, secret=secret, tls=tls)
    async with leases.following(on_change):     # the first follower starts the watch
        leases.expire_times                     # instance id -> Unix seconds
    await leases.close()                        # at shutdown; safe to call twice

Why a watch and not a periodic ``ListServices``: the registry pushes each renewal as it
happens, so the page's countdown moves the moment an instance renews and nothing is read
while nothing changes; the stream is authenticated like the catalog's (the registration
secret, and the gateway's certificate under mutual TLS), and it exists only while a page
looks. Health and instances still come from the catalog, so the leases' stream breaking
costs the page its countdowns' renewals, never its routing view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping

from meshkit.registration import Backoff
from meshkit.tls import MeshTls
from meshkit.watch import RegistryStub, RegistryWatch
from plugmesh.registry.v1 import registry_pb2

__all__ = ["Leases"]

log = logging.getLogger(__name__)

Listener = Callable[[], None]
_Table = Mapping[str, float]


class Leases:
    """When each instance's lease runs out, as the registry's watch reports renewals.

    Args:
        registry_address: ``host:port`` of the registry.
        secret: The registration secret, sent with the watch when set.
        backoff: Delays between reconnections of a broken watch.
        tls: Mutual TLS to the registry; plaintext when ``None``.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        tls: MeshTls | None = None,
    ) -> None:
        self._address = registry_address
        self._secret = secret
        self._backoff = backoff
        self._tls = tls
        self._watch: RegistryWatch[_Table] | None = None
        self._expire_times: dict[str, float] = {}
        self._listeners: list[Listener] = []
        self._lock = asyncio.Lock()
        self._closed = False

    @property
    def expire_times(self) -> Mapping[str, float]:
        """Instance id -> when its lease runs out unless renewed, in Unix seconds; empty
        until the watch has synced, and while nobody follows."""
        return self._expire_times

    @contextlib.asynccontextmanager
    async def following(self, listener: Listener) -> AsyncIterator[None]:
        """Call ``listener()`` after every change of :attr:`expire_times` while inside;
        the watch runs while anybody follows."""
        async with self._lock:
            self._listeners.append(listener)
            if self._watch is None and not self._closed:
                self._watch = RegistryWatch(
                    self._address,
                    read=_read,
                    on_change=self._publish,
                    secret=self._secret,
                    backoff=self._backoff,
                    name="console leases",
                    tls=self._tls,
                    lease_renewals=True,
                )
                await self._watch.start()
        try:
            yield
        finally:
            async with self._lock:
                self._listeners.remove(listener)
                if not self._listeners:
                    await self._stop()

    async def close(self) -> None:
        """Stop the watch for good (the gateway is stopping). Safe to call twice."""
        async with self._lock:
            self._closed = True
            await self._stop()

    async def _stop(self) -> None:
        watch, self._watch = self._watch, None
        self._expire_times = {}
        if watch is not None:
            await watch.close()

    def _publish(self, table: Mapping[str, _Table]) -> None:
        self._expire_times = {
            instance: expires for leases in table.values() for instance, expires in leases.items()
        }
        for listener in tuple(self._listeners):
            try:
                listener()
            except Exception:
                log.exception("a listener of the leases failed")


async def _read(service: registry_pb2.Service, _stub: RegistryStub) -> _Table:
    return {
        instance.instance_id: instance.lease_expire_time.ToNanoseconds() / 1e9
        for instance in service.instances
    }
