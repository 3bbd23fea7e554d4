"""Time-ordered event ids: UUIDv7 (RFC 9562).

The first 48 bits are the Unix time in milliseconds, so ids sort by creation time and
database indexes on them stay append-mostly. Within one millisecond the 12-bit
``rand_a`` field counts up (RFC 9562 §6.2, method 1), so ids made by one process are
strictly increasing; the remaining 62 bits are random.

The random bits come from a generator of this module seeded from ``os.urandom`` (again
in a forked child): ids must be unique, not secret, and a system call per id would cost
more than the rest of making one.
"""

from __future__ import annotations

import os
import random
import threading
import time
import uuid

__all__ = ["new_event_id", "uuid7", "uuid7_of"]

_lock = threading.Lock()
_last_millis = 0
_counter = 0
_random = random.Random(os.urandom(32))


def _reseed() -> None:
    _random.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def _next() -> int:
    global _last_millis, _counter
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            _last_millis = millis
            _counter = _random.getrandbits(10)  # leave room to count up
        else:
            # Same millisecond, or the clock stepped back: keep counting from the last id.
            _counter += 1
            if _counter > 0xFFF:
                _last_millis += 1
                _counter = 0
        millis = _last_millis
        counter = _counter
        random_b = _random.getrandbits(62)
    return _uuid7_int(millis, counter, random_b)


def _uuid7_int(millis: int, rand_a: int, rand_b: int) -> int:
    value = (millis & ((1 << 48) - 1)) << 80
    return value | 0x7 << 76 | (rand_a & 0xFFF) << 64 | 0b10 << 62 | (rand_b & ((1 << 62) - 1))


def _text(value: int) -> str:
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def uuid7() -> uuid.UUID:
    """A new UUIDv7, greater than every one this process made before."""
    return uuid.UUID(int=_next())


def new_event_id() -> str:
    """``str(uuid7())``, made without the ``uuid.UUID`` object."""
    return _text(_next())


def uuid7_of(millis: int, rand_a: int, rand_b: int) -> str:
    """The UUIDv7 text of given fields: for ids every process must make alike.

    Args:
        millis: Unix time in milliseconds (48 bits kept).
        rand_a: The 12 bits after the version.
        rand_b: The 62 bits after the variant.
    """
    return _text(_uuid7_int(millis, rand_a, rand_b))
