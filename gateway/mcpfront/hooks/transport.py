"""Hooks called over the mesh: :class:`MeshHookTransport`, through the gateway's
channels to the plugins (:class:`gateway.upstream.Upstreams`), so a hook gets what any
plugin call gets: a SERVING instance, round-robin, the call's trace context."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf import message

from gateway.mcpfront.hooks.declared import Hook, Phase
from gateway.upstream import Upstreams
from meshkit.tracing import current_trace

__all__ = ["MeshHookTransport"]

Answer = TypeVar("Answer", bound=message.Message)


class MeshHookTransport:
    """Calls hooks on their plugins' serving instances.

    Args:
        upstreams: The gateway's calls to the plugins.
    """

    def __init__(self, upstreams: Upstreams) -> None:
        self._upstreams = upstreams

    async def call(
        self, hook: Hook, phase: Phase, request: message.Message, answer: type[Answer]
    ) -> Answer:
        """Call ``hook``'s method of ``phase``; raises what the call raises (a
        ``grpc.aio.AioRpcError``, :class:`gateway.upstream.NoHealthyInstance`)."""
        trace = current_trace()
        # The call's context as it is: the plugin's server span continues it, and with
        # traces on the call is a client span in between (meshkit.client_spans).
        metadata = tuple(trace.headers().items()) if trace is not None else ()
        reply = await self._upstreams.unary(
            hook.methods[phase],
            request.SerializeToString(),
            timeout_seconds=hook.timeout_seconds,
            metadata=metadata,
        )
        return answer.FromString(reply.body)
