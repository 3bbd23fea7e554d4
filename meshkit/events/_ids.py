"""Time-ordered event ids: UUIDv7 (RFC 9562).

The first 48 bits are the Unix time in milliseconds, so ids sort by creation time and
database indexes on them stay append-mostly. Within one millisecond the 12-bit
``rand_a`` field counts up (RFC 9562 §6.2, method 1), so ids made by one process are
strictly increasing; the remaining 62 bits are random.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

__all__ = ["uuid7"]

_lock = threading.Lock()
_last_millis = 0
_counter = 0


def uuid7() -> uuid.UUID:
    """A new UUIDv7, greater than every one this process made before."""
    global _last_millis, _counter
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            _last_millis = millis
            _counter = int.from_bytes(os.urandom(2), "big") & 0x3FF  # leave room to count up
        else:
            # Same millisecond, or the clock stepped back: keep counting from the last id.
            _counter += 1
            if _counter > 0xFFF:
                _last_millis += 1
                _counter = 0
        millis = _last_millis
        counter = _counter
    random_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76 | counter << 64 | 0b10 << 62 | random_b
    return uuid.UUID(int=value)
