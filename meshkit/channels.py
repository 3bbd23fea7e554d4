"""One gRPC channel per instance address, with its callables cached.

Channels open when an address appears and are *retired* when it leaves: closed in the
background with a grace period, so calls in flight to an instance that deregistered
(and is finishing its own graceful shutdown) may complete. A channel that cannot
connect is replaced when its instance is back (:meth:`ChannelPool.reconnect`). The
gateway's upstreams and the toolkit's discovery client (:mod:`meshkit.discovery`) keep
their channels here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from meshkit.tls import MeshTls, dial

Options = tuple[tuple[str, Any], ...]

#: No message size limits: for a proxy, whose limits apply at its own edges.
UNLIMITED: Options = (
    ("grpc.max_receive_message_length", -1),
    ("grpc.max_send_message_length", -1),
)


class InstanceChannel:
    """A channel to one address and its bytes-level callables by path (no
    (de)serializers)."""

    def __init__(
        self,
        address: str,
        options: Options = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        tls: MeshTls | None = None,
    ) -> None:
        self.address = address
        # A subchannel of its own: gRPC otherwise shares one between the channels of a
        # process with the same address and options, so a fresh channel would inherit
        # the reconnect backoff of the one it replaces while that one is retiring.
        own = (*options, ("grpc.use_local_subchannel_pool", 1))
        # Made with the certificate the files hold now: a replacement channel
        # (:meth:`ChannelPool.reconnect`) presents a renewed one.
        self.channel = dial(address, tls, options=own, interceptors=interceptors or None)
        self._unary_unary: dict[str, grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = {}
        self._unary_stream: dict[str, grpc.aio.UnaryStreamMultiCallable[bytes, bytes]] = {}
        self._stream_unary: dict[str, grpc.aio.StreamUnaryMultiCallable[bytes, bytes]] = {}
        self._stream_stream: dict[str, grpc.aio.StreamStreamMultiCallable[bytes, bytes]] = {}

    def unary_unary(self, path: str) -> grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]:
        """The unary callable of ``/pkg.Service/Method``."""
        found = self._unary_unary.get(path)
        if found is None:
            found = self._unary_unary[path] = self.channel.unary_unary(path)
        return found

    def unary_stream(self, path: str) -> grpc.aio.UnaryStreamMultiCallable[bytes, bytes]:
        """The server-streaming callable of ``/pkg.Service/Method``."""
        found = self._unary_stream.get(path)
        if found is None:
            found = self._unary_stream[path] = self.channel.unary_stream(path)
        return found

    def stream_unary(self, path: str) -> grpc.aio.StreamUnaryMultiCallable[bytes, bytes]:
        """The client-streaming callable of ``/pkg.Service/Method``."""
        found = self._stream_unary.get(path)
        if found is None:
            found = self._stream_unary[path] = self.channel.stream_unary(path)
        return found

    def stream_stream(self, path: str) -> grpc.aio.StreamStreamMultiCallable[bytes, bytes]:
        """The bidirectional-streaming callable of ``/pkg.Service/Method``."""
        found = self._stream_stream.get(path)
        if found is None:
            found = self._stream_stream[path] = self.channel.stream_stream(path)
        return found


class ChannelPool:
    """The open channels, by address.

    Args:
        grace_seconds: How long calls in flight on a retired channel may finish.
        options: The channels' options (:data:`UNLIMITED`, say).
        interceptors: The channels' interceptors (client spans, say).
        tls: Mutual TLS of the channels; plaintext when ``None``.

    Attributes:
        interceptors: Those of the channels opened from now on.
    """

    def __init__(
        self,
        *,
        grace_seconds: float,
        options: Options = (),
        interceptors: Sequence[grpc.aio.ClientInterceptor] = (),
        tls: MeshTls | None = None,
    ) -> None:
        self._grace = grace_seconds
        self._tls = tls
        self._options = options
        self.interceptors = tuple(interceptors)
        self._open: dict[str, InstanceChannel] = {}
        self._retiring: dict[asyncio.Task[None], InstanceChannel] = {}

    @property
    def addresses(self) -> frozenset[str]:
        """Addresses with an open channel."""
        return frozenset(self._open)

    def get(self, address: str) -> InstanceChannel:
        """The channel to ``address``, opened if needed."""
        found = self._open.get(address)
        if found is None:
            found = self._open[address] = InstanceChannel(
                address, self._options, self.interceptors, self._tls
            )
        return found

    def keep(self, addresses: Iterable[str]) -> None:
        """Open channels to ``addresses`` (connecting ahead of the first call) and retire
        every other one."""
        wanted = set(addresses)
        for address in wanted - set(self._open):
            self.get(address).channel.get_state(try_to_connect=True)
        for address in set(self._open) - wanted:
            self._retire(address)

    def reconnect(self, addresses: Iterable[str]) -> None:
        """Replace each channel to ``addresses`` that is failing to connect with a fresh
        one, connecting at once; the old one is retired.

        For an instance back at an address its channel could not reach (restarted
        there): that channel fails every call at once until its reconnect backoff runs
        out, which grows with the time the instance was down. A connected or idle
        channel is kept, with its calls.
        """
        for address in addresses:
            found = self._open.get(address)
            if found is None:
                continue
            if found.channel.get_state() != grpc.ChannelConnectivity.TRANSIENT_FAILURE:
                continue
            self._retire(address)
            self.get(address).channel.get_state(try_to_connect=True)

    async def close(self) -> None:
        """Close every channel now, cutting calls in flight. Safe to call twice."""
        channels = [*self._open.values(), *self._retiring.values()]
        tasks = list(self._retiring)
        self._open, self._retiring = {}, {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(channel.channel.close() for channel in channels))

    def _retire(self, address: str) -> None:
        retired = self._open.pop(address)
        task = asyncio.create_task(
            retired.channel.close(self._grace), name=f"retire channel {address}"
        )
        self._retiring[task] = retired
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._retiring.pop(task, None)
