"""A unary call that is tried once more on another instance when the first try fails:
for safe methods only (``idempotency_level`` NO_SIDE_EFFECTS or IDEMPOTENT). Whether a
failure is worth another try, and where, the :class:`~meshkit.picker.Picker` decides."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Generic, TypeVar

import grpc
from google.protobuf import descriptor_pool

from meshkit.descriptors import is_safe_to_retry

__all__ = ["RetriedCall", "is_safe"]

_Req = TypeVar("_Req")
_Resp = TypeVar("_Resp")


def is_safe(path: str) -> bool:
    """Whether the method ``/pkg.Service/Method`` may be repeated, by its descriptor in the
    default pool (where generated code puts it). An unknown method is not safe."""
    try:
        method = descriptor_pool.Default().FindMethodByName(path.lstrip("/").replace("/", "."))
    except KeyError:
        return False
    return is_safe_to_retry(method)


Again = Callable[[grpc.aio.AioRpcError], grpc.aio.UnaryUnaryCall[_Req, _Resp] | None]


class RetriedCall(grpc.aio.UnaryUnaryCall[_Req, _Resp], Generic[_Req, _Resp]):
    """A unary call that ``again(error)`` may replace, once, when it fails.

    Args:
        first: The call as first made.
        again: The same call on another instance, or ``None`` when the failure stands;
            called at most once.
    """

    def __init__(
        self, first: grpc.aio.UnaryUnaryCall[_Req, _Resp], again: Again[_Req, _Resp]
    ) -> None:
        self._call = first
        self._again: Again[_Req, _Resp] | None = again

    def __await__(self) -> Generator[None, None, _Resp]:
        return self._outcome().__await__()

    async def _outcome(self) -> _Resp:
        try:
            return await self._call
        except grpc.aio.AioRpcError as exc:
            again, self._again = self._again, None
            if again is None or self._call.cancelled():
                raise
            retry = again(exc)
            if retry is None:
                raise
            self._call = retry
        return await retry

    def cancelled(self) -> bool:
        """Whether the call (the current try) was cancelled."""
        return self._call.cancelled()

    def done(self) -> bool:
        """Whether the current try has ended."""
        return self._call.done()

    def time_remaining(self) -> float | None:
        """Seconds left before the deadline."""
        return self._call.time_remaining()

    def cancel(self) -> bool:
        """Cancel the current try."""
        return self._call.cancel()

    def add_done_callback(self, callback: Callable[[grpc.aio.Call], None]) -> None:
        """Call ``callback`` when the current try ends (the first try, until the call is
        awaited and retried)."""
        self._call.add_done_callback(callback)

    async def initial_metadata(self) -> grpc.aio.Metadata:
        """The initial metadata of the try that answered."""
        return await self._call.initial_metadata()

    async def trailing_metadata(self) -> grpc.aio.Metadata:
        """The trailing metadata of the try that answered."""
        return await self._call.trailing_metadata()

    async def code(self) -> grpc.StatusCode:
        """The status code of the try that answered."""
        return await self._call.code()

    async def details(self) -> str:
        """The status details of the try that answered."""
        return await self._call.details()

    async def wait_for_connection(self) -> None:
        """Wait until the current try is connected."""
        await self._call.wait_for_connection()
