"""What an entry takes from an event: actor, outcome, details, network fields, trace."""

from __future__ import annotations

import datetime as dt

import pytest
from google.protobuf import message
from google.rpc import code_pb2, status_pb2

from meshkit.events import ReceivedEvent, build_event, subject_of
from meshkit.tracing import TraceContext
from plugmesh.events.v1 import (
    auth_events_pb2,
    event_pb2,
    machine_user_events_pb2,
    rate_limit_events_pb2,
    registry_events_pb2,
    tool_events_pb2,
    user_events_pb2,
)
from plugmesh.registry.v1 import registry_pb2
from plugmesh.users.v1 import users_pb2
from services.audit.events import REDACTED, draft_of_event, redact
from services.audit.model import Actor, ActorType, Outcome

USER = event_pb2.Actor(type=event_pb2.ACTOR_TYPE_USER, id="alice", display_name="a@example.com")


def received(
    payload: message.Message, *, subject: str = "", trace: TraceContext | None = None
) -> ReceivedEvent:
    event = build_event(
        payload,
        source="/plugmesh/gateway",
        subject=subject,
        time=dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC),
    )
    return ReceivedEvent(envelope=event, subject=subject_of(event.type), trace=trace)


def _health(health: registry_pb2.HealthStatus.ValueType) -> message.Message:
    return registry_events_pb2.RegistryInstanceHealthChanged(
        instance=registry_pb2.Instance(health=health)
    )


def _failed(code: int) -> tool_events_pb2.ToolCallFailed:
    return tool_events_pb2.ToolCallFailed(actor=USER, error=status_pb2.Status(code=code))


@pytest.mark.parametrize(
    ("payload", "outcome"),
    [
        pytest.param(user_events_pb2.UserCreated(actor=USER), Outcome.SUCCESS, id="user.created"),
        pytest.param(auth_events_pb2.AuthLogin(actor=USER), Outcome.SUCCESS, id="auth.login"),
        pytest.param(auth_events_pb2.AuthFailed(), Outcome.DENIED, id="auth.failed"),
        pytest.param(
            rate_limit_events_pb2.RateLimitExceeded(actor=USER),
            Outcome.DENIED,
            id="rate_limit.exceeded",
        ),
        pytest.param(tool_events_pb2.ToolCallStarted(actor=USER), Outcome.UNKNOWN, id="started"),
        pytest.param(
            tool_events_pb2.ToolCallCompleted(actor=USER), Outcome.SUCCESS, id="completed"
        ),
        pytest.param(
            tool_events_pb2.ToolCallCompleted(actor=USER, is_error=True),
            Outcome.FAILURE,
            id="completed-with-error",
        ),
        pytest.param(_failed(code_pb2.PERMISSION_DENIED), Outcome.DENIED, id="failed-denied"),
        pytest.param(
            _failed(code_pb2.UNAUTHENTICATED), Outcome.DENIED, id="failed-unauthenticated"
        ),
        pytest.param(_failed(code_pb2.DEADLINE_EXCEEDED), Outcome.FAILURE, id="failed-deadline"),
        pytest.param(
            registry_events_pb2.RegistryInstanceRegistered(), Outcome.SUCCESS, id="registered"
        ),
        pytest.param(_health(registry_pb2.HEALTH_STATUS_SERVING), Outcome.SUCCESS, id="serving"),
        pytest.param(
            _health(registry_pb2.HEALTH_STATUS_NOT_SERVING), Outcome.FAILURE, id="not-serving"
        ),
        pytest.param(
            _health(registry_pb2.HEALTH_STATUS_UNREACHABLE), Outcome.FAILURE, id="unreachable"
        ),
        pytest.param(registry_events_pb2.RegistryInstanceExpired(), Outcome.FAILURE, id="expired"),
    ],
)
def test_outcome_follows_the_event_type_and_payload(
    payload: message.Message, outcome: Outcome
) -> None:
    assert draft_of_event(received(payload)).outcome is outcome


@pytest.mark.parametrize(
    ("payload", "actor"),
    [
        pytest.param(
            user_events_pb2.UserDeleted(actor=USER),
            Actor(ActorType.USER, "alice", "a@example.com"),
            id="user",
        ),
        pytest.param(
            machine_user_events_pb2.MachineUserCreated(
                actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_MACHINE, id="mu-1")
            ),
            Actor(ActorType.MACHINE, "mu-1"),
            id="machine",
        ),
        pytest.param(
            registry_events_pb2.RegistryInstanceExpired(
                actor=event_pb2.Actor(type=event_pb2.ACTOR_TYPE_SYSTEM, id="registry")
            ),
            Actor(ActorType.SYSTEM, "registry"),
            id="system",
        ),
        pytest.param(
            user_events_pb2.UserCreated(), Actor(ActorType.SYSTEM, "gateway"), id="absent-is-system"
        ),
    ],
)
def test_actor_comes_from_the_payload(payload: message.Message, actor: Actor) -> None:
    assert draft_of_event(received(payload)).actor == actor


def test_envelope_fields_become_entry_fields() -> None:
    trace = TraceContext("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    payload = auth_events_pb2.AuthLogin(
        actor=USER, user_id="alice", ip_address="198.51.100.1", user_agent="claude/1.0"
    )
    event = received(payload, subject="users/alice", trace=trace)

    draft = draft_of_event(event)

    assert draft.entry_id == event.id
    assert draft.action == "auth.login"
    assert draft.occur_time == dt.datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=dt.UTC)
    assert draft.resource == "users/alice"
    assert draft.source == "/plugmesh/gateway"
    assert (draft.ip_address, draft.user_agent, draft.request_id) == (
        "198.51.100.1",
        "claude/1.0",
        "",
    )
    assert draft.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert draft.details == {
        "@type": "type.googleapis.com/plugmesh.events.v1.AuthLogin",
        "actor": {"type": "ACTOR_TYPE_USER", "id": "alice", "displayName": "a@example.com"},
        "userId": "alice",
        "ipAddress": "198.51.100.1",
        "userAgent": "claude/1.0",
    }


def test_details_are_the_payload_in_proto3_json() -> None:
    payload = user_events_pb2.UserPermissionsUpdated(
        actor=USER,
        user_id="bob",
        revision=7,
        permissions=users_pb2.Permissions(admin=True),
    )
    details = draft_of_event(received(payload)).details

    assert details["revision"] == "7"  # int64 as a string, as proto3 JSON has it
    assert details["permissions"] == {"admin": True}


def test_a_payload_without_generated_code_is_kept_as_bytes() -> None:
    event = received(user_events_pb2.UserCreated(actor=USER))
    event.envelope.data.type_url = "type.googleapis.com/example.v1.Future"

    draft = draft_of_event(event)

    assert draft.actor == Actor(ActorType.SYSTEM, "gateway")
    assert draft.details["@type"] == "type.googleapis.com/example.v1.Future"
    assert isinstance(draft.details["value"], str)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"token": "pmk_x"}, {"token": REDACTED}, id="token"),
        pytest.param({"accessToken": "x"}, {"accessToken": REDACTED}, id="camel-token"),
        pytest.param(
            {"apiKey": "k", "api_key": "k"}, {"apiKey": REDACTED, "api_key": REDACTED}, id="api-key"
        ),
        pytest.param({"a": [{"password": "p"}]}, {"a": [{"password": REDACTED}]}, id="nested"),
        pytest.param(
            {"tokenInfo": {"prefix": "pmk_abcd"}, "credentialFingerprint": "0f"},
            {"tokenInfo": {"prefix": "pmk_abcd"}, "credentialFingerprint": "0f"},
            id="not-secrets",
        ),
        pytest.param({"secret": ""}, {"secret": ""}, id="empty-kept"),
    ],
)
def test_secrets_never_reach_the_details(
    value: dict[str, object], expected: dict[str, object]
) -> None:
    assert redact(value) == expected  # type: ignore[arg-type]  # JSON-shaped test data
