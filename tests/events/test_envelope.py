"""The envelope, ids, trace context and settings (no servers)."""

from __future__ import annotations

import datetime as dt
import os
import uuid

import pytest
from google.protobuf import any_pb2

from meshkit.config import ConfigError
from meshkit.events import (
    PAYLOAD_TYPES,
    EnvelopeError,
    EventSettings,
    NotAnEventPayload,
    UnknownEventType,
    build_event,
    event_type_of,
    parse_event,
    source_of,
    subject_of,
    unpack_payload,
)
from meshkit.events._ids import new_event_id, uuid7
from meshkit.events.settings import VARIABLES
from meshkit.tracing import TraceContext, current_trace, new_trace, use_trace
from plugmesh.events.v1 import auth_events_pb2, event_pb2, user_events_pb2
from plugmesh.users.v1 import users_pb2

DESIGN_TYPES = {
    "user.created",
    "user.updated",
    "user.deleted",
    "user.permissions.updated",
    "auth.login",
    "auth.logout",
    "auth.user.created",
    "tool.call.started",
    "tool.call.completed",
    "tool.call.failed",
    "machine_user.created",
    "machine_user.deleted",
    "machine_user.token_rotated",
}


def test_every_event_type_of_the_design_has_a_payload_message() -> None:
    assert set(PAYLOAD_TYPES) >= DESIGN_TYPES
    assert any(t.startswith("registry.") for t in PAYLOAD_TYPES)


@pytest.mark.parametrize("event_type", sorted(PAYLOAD_TYPES))
def test_the_type_comes_from_the_payload_option(event_type: str) -> None:
    assert event_type_of(PAYLOAD_TYPES[event_type]()) == event_type


def test_the_envelope_carries_the_cloudevents_attributes_and_the_packed_payload() -> None:
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    payload = user_events_pb2.UserCreated(user=users_pb2.User(user_id="u-1"))

    event = build_event(payload, source=source_of("users"), subject="users/u-1", time=when)

    assert uuid.UUID(event.id).version == 7
    assert event.source == "/plugmesh/users"
    assert event.specversion == "1.0"
    assert event.type == "user.created"
    assert event.subject == "users/u-1"
    assert event.datacontenttype == "application/protobuf"
    assert event.time.ToDatetime(tzinfo=dt.UTC) == when
    assert event.data.type_url == "type.googleapis.com/plugmesh.events.v1.UserCreated"
    assert unpack_payload(parse_event(event.SerializeToString())) == payload
    assert subject_of(event.type) == "plugmesh.events.user.created"


def test_an_event_time_is_whole_microseconds_as_stores_keep_it() -> None:
    times = [build_event(auth_events_pb2.AuthLogin(), source="/plugmesh/t").time for _ in range(20)]

    # A consumer stores the time with microseconds; its copy must equal the event's.
    assert [time.nanos % 1_000 for time in times] == [0] * 20
    now = dt.datetime.now(dt.UTC)
    assert all(
        abs(now - time.ToDatetime(tzinfo=dt.UTC)) < dt.timedelta(minutes=1) for time in times
    )


def test_a_message_that_is_not_a_payload_is_refused_by_name() -> None:
    with pytest.raises(
        NotAnEventPayload, match=r"plugmesh\.users\.v1\.User is not an event payload"
    ):
        build_event(users_pb2.User(), source="/plugmesh/users")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"\xff\xff", "not a plugmesh.events.v1.Event", id="garbage"),
        pytest.param(b"", "without id, type, source", id="empty"),
        pytest.param(
            event_pb2.Event(id="x", source="/s").SerializeToString(), "without type", id="no-type"
        ),
    ],
)
def test_a_bad_envelope_is_refused_saying_why(data: bytes, message: str) -> None:
    with pytest.raises(EnvelopeError, match=message):
        parse_event(data)


def test_a_payload_of_another_type_than_the_envelope_says_is_refused() -> None:
    event = build_event(user_events_pb2.UserCreated(), source="/plugmesh/users")
    event.type = "user.deleted"

    with pytest.raises(EnvelopeError, match=r"type 'user\.deleted' but payload"):
        unpack_payload(event)


def test_an_unknown_payload_type_is_named() -> None:
    event = build_event(auth_events_pb2.AuthLogin(), source="/plugmesh/gateway")
    event.data.CopyFrom(any_pb2.Any(type_url="type.googleapis.com/acme.v1.Nope", value=b""))

    with pytest.raises(UnknownEventType, match=r"acme\.v1\.Nope"):
        unpack_payload(event)


def test_ids_are_time_ordered_and_unique() -> None:
    ids = [uuid7() for _ in range(10_000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids[:10])


def test_event_ids_are_canonical_uuid7_strings_in_order() -> None:
    ids = [build_event(auth_events_pb2.AuthLogin(), source="/plugmesh/x").id for _ in range(5_000)]

    parsed = [uuid.UUID(i) for i in ids]
    assert [str(u) for u in parsed] == ids
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(u.version == 7 and u.variant == uuid.RFC_4122 for u in parsed)


def test_event_ids_differ_in_a_forked_child() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: write one id and leave at once
        os.write(write, new_event_id().encode())
        os._exit(0)
    os.close(write)
    mine = new_event_id()
    os.waitpid(pid, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    assert theirs
    assert theirs[14:] != mine[14:]


def test_trace_context_is_read_from_headers_and_made_current() -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    trace = TraceContext.from_headers({"traceparent": parent, "tracestate": "a=1"})

    assert trace == TraceContext(parent, "a=1")
    assert TraceContext.from_headers({"traceparent": "00-" + "0" * 32 + "-1-01"}) is None
    assert TraceContext.from_headers(None) is None
    assert TraceContext.from_headers(new_trace().headers()) is not None
    with use_trace(trace):
        assert current_trace() == trace
    assert current_trace() is None


def test_settings_default_when_unset_and_every_variable_is_read() -> None:
    assert EventSettings.from_env({}) == EventSettings()
    env = {name: "7" for name, _, _ in VARIABLES}
    env["PLUGMESH_EVENTS_STREAM_RETENTION"] = "interest"
    env["PLUGMESH_EVENTS_STREAM_STORAGE"] = "memory"
    env["PLUGMESH_EVENTS_STREAM_MAX_AGE_SECONDS"] = "300"
    env["PLUGMESH_EVENTS_DLQ_MAX_AGE_SECONDS"] = "300"

    settings = EventSettings.from_env(env)

    assert settings.max_attempts == 7
    assert settings.stream_retention == "interest"
    assert settings.stream_storage == "memory"
    assert settings.dedupe_window_seconds == 7


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        pytest.param("PLUGMESH_EVENTS_MAX_ATTEMPTS", "two", "must be a whole number", id="word"),
        pytest.param("PLUGMESH_EVENTS_MAX_ATTEMPTS", "0", "greater than 0", id="zero"),
        pytest.param("PLUGMESH_EVENTS_STREAM_RETENTION", "forever", "one of", id="retention"),
        pytest.param("PLUGMESH_EVENTS_STREAM_STORAGE", "tape", "one of", id="storage"),
        pytest.param("PLUGMESH_EVENTS_ACK_WAIT_SECONDS", "soon", "must be a number", id="float"),
        pytest.param("PLUGMESH_EVENTS_STREAM_MAX_BYTES", "-5", "not be negative", id="negative"),
        pytest.param(
            "PLUGMESH_EVENTS_STREAM_MAX_AGE_SECONDS", "60", "DEDUPE_WINDOW", id="age<dedupe"
        ),
    ],
)
def test_a_bad_setting_is_refused_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        EventSettings.from_env({variable: value})
    assert variable in str(raised.value)


def test_retry_delays_double_up_to_the_ceiling() -> None:
    settings = EventSettings(retry_initial_millis=100, retry_max_millis=500)

    assert [settings.retry_delay_seconds(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.5, 0.5]
