"""Server interceptor that answers a request the server cannot parse with INVALID_ARGUMENT.

grpc deserializes a request before any handler code runs; a ``DecodeError`` there
(truncated bytes, a corrupt length, a wrong wire type) reaches the caller as UNKNOWN
with the exception's repr. This interceptor swaps each method's deserializer for one
that hands a :class:`Malformed` marker to the handler instead of raising, and ends the
call with INVALID_ARGUMENT (reason ``MALFORMED_REQUEST``) when the marker arrives: for a
single request before the servicer is called, for a request stream when the servicer
reads it. Methods without a deserializer (the gateway's byte proxy) are left alone.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn, TypeAlias

import grpc
from google.protobuf import message

from meshkit.errors import InvalidArgument, abort, to_status
from meshkit.grpc_types import Context

__all__ = ["Malformed", "MalformedRequestInterceptor"]

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Behavior = Callable[..., Any]


class Malformed:
    """Stands in for a request message that did not parse."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name


class MalformedRequestInterceptor(grpc.aio.ServerInterceptor):
    """Answers unparseable requests with INVALID_ARGUMENT in ``domain``."""

    def __init__(self, domain: str) -> None:
        self._domain = domain

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method = handler_call_details.method
        deserializer = _tolerant(handler.request_deserializer, method)
        serializer = handler.response_serializer
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                self._single(handler.unary_unary), deserializer, serializer
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                self._single(handler.unary_stream), deserializer, serializer
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                self._stream(handler.stream_unary), deserializer, serializer
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                self._stream(handler.stream_stream), deserializer, serializer
            )
        return handler

    def _single(self, behavior: Behavior) -> Behavior:
        """Wrap a handler of one request message."""
        if inspect.isasyncgenfunction(behavior):

            async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
                if isinstance(request, Malformed):
                    await self._reject(context, request)
                async for response in behavior(request, context):
                    yield response

            return stream

        async def call(request: Any, context: Context) -> Any:
            if isinstance(request, Malformed):
                await self._reject(context, request)
            return await behavior(request, context)

        return call

    def _stream(self, behavior: Behavior) -> Behavior:
        """Wrap a handler of a request stream: the check runs as each message is read."""

        async def checked(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, Malformed):
                    await self._reject(context, request)
                yield request

        if inspect.isasyncgenfunction(behavior):

            async def stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
                async for response in behavior(checked(requests, context), context):
                    yield response

            return stream

        async def call(requests: AsyncIterator[Any], context: Context) -> Any:
            return await behavior(checked(requests, context), context)

        return call

    async def _reject(self, context: Context, request: Malformed) -> NoReturn:
        error = InvalidArgument(
            f"the request is not a valid {request.type_name} message: malformed protobuf",
            reason="MALFORMED_REQUEST",
            metadata={"type": request.type_name},
        )
        await abort(context, to_status(error, self._domain))
        raise AssertionError("context.abort returned")  # it always raises


def _tolerant(deserializer: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    """``deserializer``, returning :class:`Malformed` instead of raising ``DecodeError``."""
    owner = getattr(deserializer, "__self__", None)
    descriptor = getattr(owner, "DESCRIPTOR", None)
    type_name = getattr(descriptor, "full_name", None) or f"request of {method}"

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except message.DecodeError:
            return Malformed(type_name)

    return deserialize
