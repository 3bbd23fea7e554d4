"""Calling another service of the mesh by name: channels kept current by the registry.

::

    discovery = Discovery(
        config.registry_address, secret=config.registration_secret, tls=config.tls
    )
    discovery.attach(server)       # follows the registry from start to stop

    users = UserServiceStub(discovery.channel("plugmesh.users.v1.UserService"))
    reply = await users.GetUser(GetUserRequest(user_id="u-1"), timeout=2)

:meth:`Discovery.channel` gives a :class:`grpc.aio.Channel` for any generated stub. Each
call goes to the next SERVING instance of the service, round-robin; the registry's watch
stream keeps the list current (:mod:`meshkit.watch`), so an instance that registers gets
calls and one that stops serving or leaves gets none, with no restart. No instance
serving (or no word from the registry yet) fails the call at once with UNAVAILABLE naming
the service. A unary call of a safe method (``idempotency_level`` NO_SIDE_EFFECTS or
IDEMPOTENT, from the descriptor generated code registers) that fails with UNAVAILABLE is
made once more on another instance, within the same deadline; other calls are not
retried. The gateway picks its instances with the same :class:`~meshkit.picker.Picker`.

Inside a handler of a meshkit server (:class:`~meshkit.interceptors.MeshInterceptor`),
each call carries the handler's call along:

- its trace: ``traceparent`` / ``tracestate`` of the handler's span, so the callee's span
  is its child;
- its caller's identity: the signed identity entries the handler received, unchanged,
  so the callee authorizes the same person or machine (it verifies the gateway's
  signature itself);
- its deadline: a call never outlives the handler's caller; a shorter ``timeout`` wins.

Metadata the caller passes itself takes precedence over what is carried along. With
traces on, each call is a client span of the server it is attached to
(:mod:`meshkit.spans`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import grpc

from meshkit._directory import Directory
from meshkit._routes import Route, StreamStream, StreamUnary, UnaryStream, UnaryUnary
from meshkit.channels import ChannelPool, InstanceChannel
from meshkit.client_spans import client_interceptors
from meshkit.events.bus import Lifecycle
from meshkit.picker import Deadline, Picker
from meshkit.registration import Backoff
from meshkit.tls import MeshTls

__all__ = ["Discovery", "ServiceChannel"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


class Discovery:
    """Channels to the services of the mesh, by gRPC service name.

    Args:
        registry_address: ``host:port`` of the registry.
        secret: The registration secret, sent with the registry watch when set.
        backoff: Delays between reconnections of a broken registry watch.
        grace_seconds: How long calls in flight to an instance that left may finish.
        tls: Mutual TLS to the registry and the instances; plaintext when ``None``.
    """

    def __init__(
        self,
        registry_address: str,
        *,
        secret: str | None = None,
        backoff: Backoff | None = None,
        grace_seconds: float = 5.0,
        tls: MeshTls | None = None,
    ) -> None:
        self._pool = ChannelPool(grace_seconds=grace_seconds, tls=tls)
        self._directory = Directory(
            registry_address, secret=secret, backoff=backoff, on_change=self._retire, tls=tls
        )
        self._picker = Picker(self._directory.instances)
        self._closed = False

    def _retire(self, serving: frozenset[str]) -> None:
        # Channels open on first use; those to addresses that no longer serve are retired.
        self._pool.keep(self._pool.addresses & serving)

    def attach(self, server: Lifecycle) -> None:
        """Start with ``server`` (a :class:`~meshkit.server.PluginServer`) and close after
        it stopped; its calls are client spans of the server's (with traces on)."""
        self._pool.interceptors = client_interceptors(server.spans)
        server.add_startup(self.start)
        server.add_closer(self.close)

    async def start(self) -> None:
        """Follow the registry in the background; returns at once. Safe to call twice."""
        await self._directory.start()

    async def wait_ready(self, timeout_seconds: float) -> None:
        """Return once the registry's view has arrived.

        Raises:
            TimeoutError: It did not arrive within ``timeout_seconds``.
        """
        async with asyncio.timeout(timeout_seconds):
            await self._directory.wait_synced()

    async def close(self) -> None:
        """Stop following the registry and close every channel. Safe to call twice."""
        self._closed = True
        await self._directory.close()
        await self._pool.close()

    def channel(self, grpc_service: str) -> ServiceChannel:
        """A channel whose calls go to the serving instances of ``grpc_service``
        (``pkg.Service``, as in ``plugmesh.users.v1.UserService``)."""
        return ServiceChannel(self, grpc_service)

    def serving(self, grpc_service: str) -> tuple[str, ...]:
        """The addresses that serve ``grpc_service`` now."""
        return self._directory.serving(grpc_service)

    async def wait_changed(self) -> None:
        """Return at the next change of the registry's view."""
        await self._directory.wait_changed()

    def pick(self, grpc_service: str) -> InstanceChannel:
        """The channel of the next serving instance of ``grpc_service``.

        Raises:
            grpc.aio.AioRpcError: UNAVAILABLE: none serves it, or the registry's view has
                not arrived yet.
        """
        instance = None if self._closed else self._picker.pick(grpc_service)
        if instance is None:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE,
                grpc.aio.Metadata(),
                grpc.aio.Metadata(),
                self._why_none(grpc_service),
            )
        return self._pool.get(instance.address)

    def retry(
        self,
        grpc_service: str,
        failed: InstanceChannel,
        error: grpc.aio.AioRpcError,
        deadline: Deadline,
        *,
        method: str,
    ) -> InstanceChannel | None:
        """The channel of another serving instance of ``grpc_service`` to make the safe
        call ``method`` again on, after it failed on ``failed``; ``None`` when the failure
        stands (see :meth:`meshkit.picker.Picker.retry`)."""
        if self._closed:
            return None
        other = self._picker.retry(grpc_service, failed, error, deadline, method=method)
        return None if other is None else self._pool.get(other.address)

    def _why_none(self, grpc_service: str) -> str:
        if self._closed:
            return f"{grpc_service}: discovery is closed"
        if not self._directory.synced:
            return f"{grpc_service}: the registry's view has not arrived yet"
        return f"no serving instance of {grpc_service} is registered"


class ServiceChannel(grpc.aio.Channel):
    """A :class:`grpc.aio.Channel` whose calls go to the serving instances of one service.

    It owns no connection (the :class:`Discovery` does): closing it does nothing.
    """

    def __init__(self, discovery: Discovery, grpc_service: str) -> None:
        self._discovery = discovery
        self.grpc_service = grpc_service

    def unary_unary(
        self,
        method: str,
        request_serializer: Callable[[_Req], bytes] | None = None,
        response_deserializer: Callable[[bytes], _Resp] | None = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.UnaryUnaryMultiCallable[_Req, _Resp]:
        """A callable of the unary method ``/pkg.Service/Method``."""
        return UnaryUnary(self._route(method, request_serializer, response_deserializer))

    def unary_stream(
        self,
        method: str,
        request_serializer: Callable[[_Req], bytes] | None = None,
        response_deserializer: Callable[[bytes], _Resp] | None = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.UnaryStreamMultiCallable[_Req, _Resp]:
        """A callable of the server-streaming method ``/pkg.Service/Method``."""
        return UnaryStream(self._route(method, request_serializer, response_deserializer))

    def stream_unary(
        self,
        method: str,
        request_serializer: Callable[[_Req], bytes] | None = None,
        response_deserializer: Callable[[bytes], _Resp] | None = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.StreamUnaryMultiCallable[_Req, _Resp]:
        """A callable of the client-streaming method ``/pkg.Service/Method``."""
        return StreamUnary(self._route(method, request_serializer, response_deserializer))

    def stream_stream(
        self,
        method: str,
        request_serializer: Callable[[_Req], bytes] | None = None,
        response_deserializer: Callable[[bytes], _Resp] | None = None,
        _registered_method: bool | None = False,
    ) -> grpc.aio.StreamStreamMultiCallable[_Req, _Resp]:
        """A callable of the bidirectional-streaming method ``/pkg.Service/Method``."""
        return StreamStream(self._route(method, request_serializer, response_deserializer))

    def _route(
        self,
        method: str,
        serializer: Callable[[Any], bytes] | None,
        deserializer: Callable[[bytes], Any] | None,
    ) -> Route:
        return Route(self._discovery, self.grpc_service, method, serializer, deserializer)

    async def channel_ready(self) -> None:
        """Return once an instance of the service serves."""
        while not self._discovery.serving(self.grpc_service):
            await self._discovery.wait_changed()

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:
        """READY while an instance serves, else TRANSIENT_FAILURE."""
        if self._discovery.serving(self.grpc_service):
            return grpc.ChannelConnectivity.READY
        return grpc.ChannelConnectivity.TRANSIENT_FAILURE

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:
        """Return once :meth:`get_state` differs from ``last_observed_state``."""
        while self.get_state() == last_observed_state:
            await self._discovery.wait_changed()

    async def close(self, grace: float | None = None) -> None:
        """Nothing to close: the :class:`Discovery` owns the connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()
