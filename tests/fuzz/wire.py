"""Protobuf request bytes for fuzzing: random valid messages of a descriptor, and
malformed variations of them written at the wire-format level.

Every case is drawn from a ``random.Random`` the caller seeds, so a run is reproducible.
A case has a ``kind`` (what was done to the bytes) for the failure report.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor, message, message_factory

__all__ = ["Case", "cases"]

_FD = descriptor.FieldDescriptor
VARINT, I64, LEN, SGROUP, EGROUP, I32 = 0, 1, 2, 3, 4, 5
_WIRE_TYPE = {
    _FD.TYPE_DOUBLE: I64,
    _FD.TYPE_FIXED64: I64,
    _FD.TYPE_SFIXED64: I64,
    _FD.TYPE_FLOAT: I32,
    _FD.TYPE_FIXED32: I32,
    _FD.TYPE_SFIXED32: I32,
    _FD.TYPE_STRING: LEN,
    _FD.TYPE_BYTES: LEN,
    _FD.TYPE_MESSAGE: LEN,
    _FD.TYPE_GROUP: SGROUP,
}
_INT_EDGES = (0, 1, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**64 - 1, 2**32)
_STRINGS = ("", "*", "**", "a/b", "%2F", "../..", "\x00", "é", "🦀", "x" * 300, "users/1")
#: Strings most validators accept, so that the other fields of a message get checked too.
_PLAIN = ("ok", "fuzz-1", "a.b", "tools/x")
#: (seconds, nanos) at the limits of the well-known types' valid ranges.
_EXTREMES = {
    "google.protobuf.Timestamp": [(-62135596800, 0), (253402300799, 999999999), (0, 0)],
    "google.protobuf.Duration": [
        (315576000000, 999999999),
        (-315576000000, -999999999),
        (0, 1),
        (86400 * 366, 0),
    ],
}
#: Deep enough to pass any parser's recursion limit (protobuf's default is 100).
_DEEP = 2000


@dataclass(frozen=True)
class Case:
    """One request body to send."""

    kind: str
    data: bytes


def varint(value: int) -> bytes:
    """``value`` as a base-128 varint (negative numbers as 10-byte two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def tag(number: int, wire_type: int) -> bytes:
    """The key of a field."""
    return varint((number << 3) | wire_type)


def length_delimited(number: int, payload: bytes) -> bytes:
    """Field ``number`` holding ``payload`` with its length."""
    return tag(number, LEN) + varint(len(payload)) + payload


def random_message(
    message_type: descriptor.Descriptor, rng: random.Random, depth: int = 0
) -> message.Message:
    """A message of ``message_type`` with a random subset of its fields set, values drawn
    from plain ones and edge cases (empty, huge, negative, unknown enum numbers, odd
    strings, Timestamps and Durations at the limits of their ranges)."""
    built = message_factory.GetMessageClass(message_type)()
    extremes = _EXTREMES.get(message_type.full_name)
    if extremes and rng.random() < 0.5:
        # A value valid on the wire and in range for the type, at the edge of what a
        # server's own types (datetime, timedelta) can hold.
        limit: Any = built  # a Timestamp or a Duration
        limit.seconds, limit.nanos = rng.choice(extremes)
        return built
    for field in message_type.fields:
        if rng.random() < 0.5 or (field.message_type is not None and depth >= 3):
            continue
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            _fill_map(built, field, rng, depth)
        elif field.is_repeated:
            for _ in range(rng.randint(0, 3)):
                _append(built, field, rng, depth)
        elif field.message_type is not None:
            getattr(built, field.name).CopyFrom(random_message(field.message_type, rng, depth + 1))
        else:
            _set(built, field, _scalar(field, rng))
    return built


def _set(built: Any, field: _FD, value: Any) -> None:
    try:
        setattr(built, field.name, value)
    except ValueError:  # a number outside a closed (proto2) enum
        setattr(built, field.name, _first_enum_number(field))


def _first_enum_number(field: _FD) -> int:
    assert field.enum_type is not None
    return int(field.enum_type.values[0].number)


def _fill_map(built: Any, field: _FD, rng: random.Random, depth: int) -> None:
    entry = field.message_type
    assert entry is not None
    key_field, value_field = entry.fields_by_name["key"], entry.fields_by_name["value"]
    target = getattr(built, field.name)
    for _ in range(rng.randint(0, 3)):
        key = _scalar(key_field, rng)
        if value_field.message_type is not None:
            target[key].CopyFrom(random_message(value_field.message_type, rng, depth + 1))
        else:
            target[key] = _scalar(value_field, rng)


def _append(built: Any, field: _FD, rng: random.Random, depth: int) -> None:
    values = getattr(built, field.name)
    if field.message_type is not None:
        values.add().CopyFrom(random_message(field.message_type, rng, depth + 1))
        return
    try:
        values.append(_scalar(field, rng))
    except ValueError:  # a number outside a closed (proto2) enum
        values.append(_first_enum_number(field))


def _scalar(field: _FD, rng: random.Random) -> Any:
    kind = field.type
    if kind == _FD.TYPE_BOOL:
        return rng.random() < 0.5
    if kind == _FD.TYPE_STRING:
        draw = rng.random()
        if draw < 0.5:
            return rng.choice(_PLAIN)
        return rng.choice(_STRINGS) if draw < 0.8 else _text(rng)
    if kind == _FD.TYPE_BYTES:
        return rng.randbytes(rng.randint(0, 40))
    if kind in (_FD.TYPE_DOUBLE, _FD.TYPE_FLOAT):
        return rng.choice((0.0, -1.0, 1e308, float("inf"), float("nan"), rng.uniform(-1e6, 1e6)))
    if kind == _FD.TYPE_ENUM:
        assert field.enum_type is not None
        numbers = [value.number for value in field.enum_type.values]
        # Proto3 enums are open: a number the server has never heard of is legal.
        return rng.choice([*numbers, 99, -5])
    bits, signed = _INT_RANGES[kind]
    value = rng.choice(_INT_EDGES) if rng.random() < 0.5 else rng.randint(-1000, 100000)
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return min(max(value, low), high)


_INT_RANGES: dict[int, tuple[int, bool]] = {
    _FD.TYPE_INT32: (32, True),
    _FD.TYPE_SINT32: (32, True),
    _FD.TYPE_SFIXED32: (32, True),
    _FD.TYPE_UINT32: (32, False),
    _FD.TYPE_FIXED32: (32, False),
    _FD.TYPE_INT64: (64, True),
    _FD.TYPE_SINT64: (64, True),
    _FD.TYPE_SFIXED64: (64, True),
    _FD.TYPE_UINT64: (64, False),
    _FD.TYPE_FIXED64: (64, False),
}


def _text(rng: random.Random) -> str:
    alphabet = "abcXYZ019-_.:/*?@ %\t\n\u00e9\u4e2d"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))


def _field_number(message_type: descriptor.Descriptor, rng: random.Random) -> int:
    if message_type.fields:
        return int(rng.choice(message_type.fields).number)
    return rng.randint(1, 20)


# The mutations. Each takes the message type, the valid bytes and the generator.
Mutation = Callable[[descriptor.Descriptor, bytes, random.Random], bytes]


def _valid(_: descriptor.Descriptor, valid: bytes, __: random.Random) -> bytes:
    return valid


def _random_bytes(_: descriptor.Descriptor, __: bytes, rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((1, 2, 5, 17, 64, 300)))


def _truncated(_: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    if len(valid) < 2:
        return tag(1, LEN) + varint(10) + b"abc"
    return valid[: rng.randrange(1, len(valid))]


def _bit_flips(_: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    data = bytearray(valid or b"\x08\x01")
    for _flip in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def _wrong_wire_type(
    message_type: descriptor.Descriptor, valid: bytes, rng: random.Random
) -> bytes:
    number = _field_number(message_type, rng)
    field = message_type.fields_by_number.get(number)
    expected = _WIRE_TYPE.get(field.type, VARINT) if field is not None else VARINT
    wrong = rng.choice([w for w in (VARINT, I64, LEN, I32) if w != expected])
    payload = {
        VARINT: varint(rng.randrange(2**40)),
        I64: rng.randbytes(8),
        LEN: varint(3) + b"\xff\x00\x01",
        I32: rng.randbytes(4),
    }[wrong]
    return valid + tag(number, wrong) + payload


def _huge_length(message_type: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    length = rng.choice((2**31 - 1, 2**32 + 5, 2**63 - 1, 2**64 - 1, 10**6))
    return valid + tag(_field_number(message_type, rng), LEN) + varint(length) + b"\x00" * 8


def _invalid_utf8(message_type: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    strings = [f for f in message_type.fields if f.type == _FD.TYPE_STRING]
    number = rng.choice(strings).number if strings else _field_number(message_type, rng)
    return valid + length_delimited(number, b"ok\xff\xfe\xc3(")


def _unknown_fields(_: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    extra = b""
    for _field in range(rng.randint(1, 5)):
        number = rng.choice((1000, 19000, 2**29 - 1, rng.randint(5000, 90000)))
        extra += rng.choice(
            (
                tag(number, VARINT) + varint(rng.randrange(2**64)),
                tag(number, I64) + rng.randbytes(8),
                length_delimited(number, rng.randbytes(rng.randint(0, 30))),
                tag(number, I32) + rng.randbytes(4),
                tag(number, SGROUP) + tag(1, VARINT) + b"\x01" + tag(number, EGROUP),
            )
        )
    return valid + extra if rng.random() < 0.5 else extra + valid


def _deep_groups(_: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    number = rng.randint(1000, 2000)
    depth = rng.choice((_DEEP, 150))
    return valid + tag(number, SGROUP) * depth + tag(number, EGROUP) * depth


def _deep_messages(message_type: descriptor.Descriptor, valid: bytes, rng: random.Random) -> bytes:
    """Field 1 inside field 1 inside …: known message fields as far as the schema goes
    (forever for a recursive type), then unknown length-delimited fields."""
    numbers: list[int] = []
    current: descriptor.Descriptor | None = message_type
    for _ in range(_DEEP):
        nested = [f for f in current.fields if f.message_type is not None] if current else []
        field = rng.choice(nested) if nested else None
        numbers.append(field.number if field is not None else 1)
        current = field.message_type if field is not None else None
    payload = b""
    for number in reversed(numbers):
        payload = length_delimited(number, payload)
    return valid + payload


MUTATIONS: dict[str, Mutation] = {
    "valid": _valid,
    "random-bytes": _random_bytes,
    "truncated": _truncated,
    "bit-flips": _bit_flips,
    "wrong-wire-type": _wrong_wire_type,
    "huge-length": _huge_length,
    "invalid-utf8": _invalid_utf8,
    "unknown-fields": _unknown_fields,
    "deep-groups": _deep_groups,
    "deep-messages": _deep_messages,
}


def cases(message_type: descriptor.Descriptor, rng: random.Random, count: int) -> list[Case]:
    """``count`` request bodies for ``message_type``: the empty message, then each
    mutation in turn applied to a fresh random valid message."""
    found = [Case("empty", b"")]
    kinds = list(MUTATIONS)
    for index in range(count - 1):
        kind = kinds[index % len(kinds)]
        valid = random_message(message_type, rng).SerializeToString()
        found.append(Case(kind, MUTATIONS[kind](message_type, valid, rng)))
    return found
