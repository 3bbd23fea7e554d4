"""One transcoded call: HTTP request → upstream RPC → HTTP response.

Everything that can go wrong with the client's input raises an
:class:`~gateway.http.errors.HttpError` before anything is sent; an upstream failure
becomes its ``google.rpc.Status`` with the HTTP status of its code. A server stream
waits for its first message (or its failure) before answering, so that a call that
fails at once still gets its real HTTP status; after that, a failure ends the stream
with a Status line or event. A client that goes away cancels the upstream call.

A call runs in its trace (:func:`gateway.http.headers.scope_trace`): its log lines carry
the trace id and the plugin gets the ``traceparent``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import Any, Generic
from urllib.parse import parse_qsl

import grpc
from google.rpc import code_pb2, status_pb2

from gateway.http import render
from gateway.http.asgi import JSON, Receive, Scope, Send, header, read_body, send_response
from gateway.http.errors import (
    BadRequest,
    http_status,
    status_json,
    status_of_rpc_error,
)
from gateway.http.headers import (
    deadline_seconds,
    forwarded_metadata,
    response_headers,
    scope_trace,
    with_trace,
)
from gateway.http.ports import M, RequestGuard, UpstreamCalls
from gateway.http.routes import HttpRoute
from gateway.http.settings import HttpSettings
from gateway.http.transcode import decode_json_body, transcode_request
from meshkit.tracing import TraceContext, use_trace

__all__ = ["Transcoder"]

log = logging.getLogger(__name__)

_MAX_QUERY_FIELDS = 1000


class Transcoder(Generic[M]):
    """Serves matched routes by calling the upstreams."""

    def __init__(
        self,
        upstreams: UpstreamCalls[M],
        settings: HttpSettings,
        guard: RequestGuard | None = None,
    ) -> None:
        self._upstreams = upstreams
        self._settings = settings
        self._guard = guard

    async def handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: HttpRoute[M],
        segments: Sequence[str],
    ) -> int:
        """Serve one request on ``route``; return the HTTP status sent.

        Raises:
            HttpError: the request is refused or cannot be transcoded (nothing was sent).
        """
        trace, sent = scope_trace(scope)
        with use_trace(trace):
            return await self._handle(
                scope, receive, send, route, segments, None if sent else trace
            )

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: HttpRoute[M],
        segments: Sequence[str],
        new_trace: TraceContext | None,
    ) -> int:
        # Authentication first: a refused caller's body is never read.
        identity = await self._guard(route.rpc, scope) if self._guard is not None else ()
        body = await read_body(scope, receive, self._settings.body_limit_bytes)
        # The body is JSON whatever its Content-Type says (curl -d sends a form type).
        decoded = decode_json_body(body) if route.body else None
        try:
            values = route.template.values(segments)
            query = parse_qsl(
                scope.get("query_string", b"").decode("latin-1"),
                keep_blank_values=True,
                errors="strict",
                max_num_fields=_MAX_QUERY_FIELDS,
            )
        except UnicodeDecodeError:
            raise BadRequest(
                "the path or query is not percent-encoded UTF-8", reason="INVALID_ENCODING"
            ) from None
        except ValueError:
            raise BadRequest(
                f"more than {_MAX_QUERY_FIELDS} query parameters", reason="TOO_MANY_PARAMETERS"
            ) from None
        request = transcode_request(route, values, query, decoded).SerializeToString()
        headers = scope["headers"]
        # A stream may stay open as long as it sends: only the client bounds it.
        default = None if route.server_streaming else self._settings.default_timeout_seconds
        timeout_seconds = deadline_seconds(
            headers, default_seconds=default, maximum_seconds=self._settings.max_timeout_seconds
        )
        metadata = forwarded_metadata(headers)
        if new_trace is not None:
            metadata = with_trace(metadata, new_trace)
        if self._guard is not None:
            # The gateway consumed the credential; plugins get the signed identity.
            metadata = (*(m for m in metadata if m[0] != "authorization"), *identity)
        if route.server_streaming:
            accept = header(scope, b"accept") or b""
            sse = render.SSE in accept
            return await self._stream(
                receive, send, route, request, timeout_seconds, metadata, sse=sse
            )
        return await self._unary(send, route, request, timeout_seconds, metadata)

    async def _unary(
        self,
        send: Send,
        route: HttpRoute[M],
        request: bytes,
        timeout_seconds: float | None,
        metadata: tuple[tuple[str, str | bytes], ...],
    ) -> int:
        try:
            reply = await self._upstreams.unary(
                route.method, request, timeout_seconds=timeout_seconds, metadata=metadata
            )
            if render.is_http_body(route):
                body, content_type = render.raw_body(route, reply.body)
            else:
                body, content_type = render.dumps(render.response_value(route, reply.body)), JSON
        except grpc.aio.AioRpcError as exc:
            return await _send_status(send, status_of_rpc_error(exc), exc)
        except render.UpstreamDecodeError as exc:
            log.warning("an upstream answered garbage", extra={"error": str(exc)})
            return await _send_status(send, _status(code_pb2.INTERNAL, str(exc)), None, 502)
        await send_response(
            send,
            200,
            body,
            content_type=content_type,
            headers=response_headers(reply.initial_metadata, reply.trailing_metadata),
        )
        return 200

    async def _stream(
        self,
        receive: Receive,
        send: Send,
        route: HttpRoute[M],
        request: bytes,
        timeout_seconds: float | None,
        metadata: tuple[tuple[str, str | bytes], ...],
        *,
        sse: bool,
    ) -> int:
        result, error = (
            (render.sse_result, render.sse_error)
            if sse
            else (
                render.ndjson_result,
                render.ndjson_error,
            )
        )
        async with self._upstreams.server_stream(
            route.method, request, timeout_seconds=timeout_seconds, metadata=metadata
        ) as stream:
            messages = aiter(stream)
            try:
                first: bytes | None = await anext(messages)
                initial = await stream.initial_metadata()
            except StopAsyncIteration:
                first, initial = None, ()
            except grpc.aio.AioRpcError as exc:
                return await _send_status(send, status_of_rpc_error(exc), exc)
            raw = render.is_http_body(route)
            content_type = render.SSE if sse else render.NDJSON
            if raw:
                # Bytes one message after another, typed by the first (grpc-gateway's way).
                content_type = render.OCTET_STREAM
                if first is not None:
                    try:
                        content_type = render.raw_body(route, first)[1]
                    except render.UpstreamDecodeError as exc:
                        status = _status(code_pb2.INTERNAL, str(exc))
                        return await _send_status(send, status, None, 502)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", content_type),
                        (b"cache-control", b"no-cache"),
                        (b"x-accel-buffering", b"no"),
                        *response_headers(initial),
                    ],
                }
            )

            async def pump() -> None:
                payload = first
                while payload is not None:
                    if raw:
                        chunk = render.raw_body(route, payload)[0]
                    else:
                        chunk = result(render.response_value(route, payload))
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    payload = await anext(messages, None)

            failure: bytes = b""
            try:
                await _until_disconnect(pump(), receive)
            except grpc.aio.AioRpcError as exc:
                failure = error(status_of_rpc_error(exc))
            except render.UpstreamDecodeError as exc:
                failure = error(_status(code_pb2.INTERNAL, str(exc)))
            except Exception:
                # The answer has begun: the failure can only end it, not replace it.
                log.exception("an HTTP stream failed", extra={"route": route.label})
                failure = error(_status(code_pb2.INTERNAL, "internal error"))
            if raw and failure:
                # Raw bytes have no way to carry the Status: the stream just ends.
                log.warning("an HTTP body stream failed", extra={"route": route.label})
                failure = b""
            await send({"type": "http.response.body", "body": failure, "more_body": False})
        return 200


async def _until_disconnect(work: Coroutine[Any, Any, None], receive: Receive) -> None:
    """Run ``work``, cancelling it when the client disconnects."""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait((task, watch), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    if task.cancelled():
        return
    task.result()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send_status(
    send: Send,
    status: status_pb2.Status,
    exc: grpc.aio.AioRpcError | None,
    http: int | None = None,
) -> int:
    code = http or http_status(status.code)
    headers = response_headers((), tuple(exc.trailing_metadata() or ()) if exc else ())
    await send_response(send, code, status_json(status), content_type=JSON, headers=headers)
    return code


def _status(code: int, message: str) -> status_pb2.Status:
    return status_pb2.Status(code=code, message=message)
