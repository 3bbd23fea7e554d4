"""The rate limits' parts: limits and rules as written in the settings, and the limiter
over a real nats-server (fixed windows, Retry-After, remembered refusals, admins,
failing open)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from prometheus_client import CollectorRegistry

from gateway.ratelimit import (
    Exceeded,
    JetStreamCounters,
    Limit,
    Limiter,
    RateLimitSettings,
    Subject,
)
from gateway.ratelimit.exceeded import exceeded_event
from gateway.ratelimit.settings import VARIABLES, AdminPolicy, Rule, parse_limit
from launcher.natsd import NatsServer
from launcher.processes import ENVIRONMENT
from meshkit.config import ConfigError
from meshkit.events import unpack_payload
from plugmesh.events.v1 import event_pb2, rate_limit_events_pb2
from tests.support.waiting import until

KEY = "/plugmesh.registry.v1.RegistryService/GetService"
CALLER = Subject("machine:mu_1")


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("100/1m", Limit(100, 60.0)),
        ("5/10s", Limit(5, 10.0)),
        ("20/s", Limit(20, 1.0)),
        (" 1000 / 1h ", Limit(1000, 3600.0)),
        ("3/0.5s", Limit(3, 0.5)),
        ("off", None),
        ("OFF", None),
    ],
    ids=["per-minute", "ten-seconds", "per-second", "spaces", "half-second", "off", "OFF"],
)
def test_a_limit_is_read_as_count_per_window(text: str, limit: Limit | None) -> None:
    assert parse_limit(text) == limit


@pytest.mark.parametrize("text", ["100", "0/1m", "10/0s", "x/1m", "10/1d", "-1/1s", ""], ids=repr)
def test_a_malformed_limit_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        parse_limit(text)


def test_the_first_matching_rule_decides_and_the_default_covers_the_rest() -> None:
    settings = RateLimitSettings.from_env(
        {
            "PLUGMESH_GATEWAY_RATE_LIMIT": "100/1m",
            "PLUGMESH_GATEWAY_RATE_LIMIT_RULES": (
                "/plugmesh.audit.v1.AuditService/*=off, github/create_issue=5/1m, github/*=30/1s"
            ),
            "PLUGMESH_GATEWAY_RATE_LIMIT_ADMINS": "exempt",
        }
    )

    assert settings.limit_for(CALLER.id, "/plugmesh.audit.v1.AuditService/ListEntries") is None
    assert settings.limit_for(CALLER.id, "github/create_issue") == Limit(5, 60.0)
    assert settings.limit_for(CALLER.id, "github/search") == Limit(30, 1.0)
    assert settings.limit_for(CALLER.id, KEY) == Limit(100, 60.0)
    assert settings.admins is AdminPolicy.EXEMPT
    assert settings.longest_window_seconds == 60.0


def test_no_setting_means_no_limit() -> None:
    settings = RateLimitSettings.from_env({})

    assert not settings.enabled
    assert settings.limit_for(CALLER.id, KEY) is None


@pytest.mark.parametrize(
    ("caller", "key", "limit"),
    [
        ("machine:ci-deploy", KEY, Limit(6000, 60.0)),
        ("machine:ci-deploy", "github/search", Limit(6000, 60.0)),
        ("user:ada@example.com", "github/search", Limit(1, 1.0)),
        ("user:bob", "github/search", Limit(30, 1.0)),
        ("address:10.0.0.7", KEY, Limit(10, 1.0)),
        ("machine:other", KEY, Limit(100, 60.0)),
    ],
    ids=[
        "the-machine-on-an-rpc",
        "the-machine-on-a-tool",
        "a-person-by-email",
        "anyone-else",
        "anonymous",
        "default",
    ],
)
def test_a_rule_may_name_its_callers(caller: str, key: str, limit: Limit) -> None:
    settings = RateLimitSettings.from_env(
        {
            "PLUGMESH_GATEWAY_RATE_LIMIT": "100/1m",
            "PLUGMESH_GATEWAY_RATE_LIMIT_RULES": (
                "machine:ci-deploy@*=6000/1m, user:ada@example.com@github/*=1/s,"
                " github/*=30/1s, address:*@*=10/1s"
            ),
        }
    )

    assert settings.limit_for(caller, key) == limit


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PLUGMESH_GATEWAY_RATE_LIMIT", "lots"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_RULES", "github/*"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_RULES", "=5/1m"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_RULES", "github/*=5"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_RULES", "@github/*=5/1m"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_ADMINS", "sometimes"),
        ("PLUGMESH_GATEWAY_RATE_LIMIT_TIMEOUT_SECONDS", "0"),
    ],
    ids=[
        "default",
        "rule-without-limit",
        "rule-without-glob",
        "bad-rule-limit",
        "rule-with-an-empty-caller",
        "admins",
        "timeout",
    ],
)
def test_an_unusable_setting_is_refused_naming_its_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        RateLimitSettings.from_env({name: value})


def test_every_rate_limit_variable_is_in_the_mesh_table() -> None:
    documented = {v.name: (v.default, v.description) for v in ENVIRONMENT}

    for name, default, meaning in VARIABLES:
        assert documented[name] == (default, meaning), name


class Clock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Counted:
    """The real counters, and how often they were asked."""

    def __init__(self, counters: JetStreamCounters) -> None:
        self.counters = counters
        self.asked = 0

    async def increment(self, counter: str, *, timeout_seconds: float) -> int:
        self.asked += 1
        return await self.counters.increment(counter, timeout_seconds=timeout_seconds)


@pytest.fixture
async def counters(nats_server: NatsServer) -> AsyncIterator[Counted]:
    """Counters in a real nats-server, once it has the stream."""
    store = JetStreamCounters(nats_server.url, keep_seconds=60)
    await store.start()
    try:
        await until(lambda: store.ready, what="the counter stream")
        yield Counted(store)
    finally:
        await store.close()
        await store.close()  # safe twice


def _limiter(counters: Counted, clock: Clock, admins: AdminPolicy = AdminPolicy.LIMITED) -> Limiter:
    limits = RateLimitSettings(rules=(Rule(KEY, Limit(2, 10.0)),), admins=admins)
    return Limiter(limits, counters, metrics_registry=CollectorRegistry(), clock=clock)


async def test_a_caller_over_the_limit_waits_until_its_window_ends(counters: Counted) -> None:
    clock = Clock(1_000_003.2)  # 6.8 s before the 10 s window ends
    limiter = _limiter(counters, clock)

    verdicts = [await limiter.check(CALLER, KEY, protocol="http") for _ in range(3)]
    clock.now = 1_000_010.0
    next_window = await limiter.check(CALLER, KEY, protocol="http")

    assert [verdict.admitted for verdict in verdicts] == [True, True, False]
    assert verdicts[2].retry_after_seconds == 7
    assert verdicts[2].limit == Limit(2, 10.0)
    assert next_window.admitted


async def test_a_refusal_is_remembered_without_asking_nats_again(counters: Counted) -> None:
    limiter = _limiter(counters, Clock(2_000_000.0))

    for _ in range(3):
        await limiter.check(CALLER, KEY, protocol="grpc")
    asked = counters.asked
    again = await limiter.check(CALLER, KEY, protocol="grpc")

    assert not again.admitted
    assert counters.asked == asked == 3


async def test_a_key_without_a_limit_is_not_counted(counters: Counted) -> None:
    limiter = _limiter(counters, Clock(3_000_000.0))

    verdicts = [await limiter.check(CALLER, "up/echo", protocol="mcp") for _ in range(5)]

    assert all(verdict.admitted for verdict in verdicts)
    assert counters.asked == 0


@pytest.mark.parametrize(
    ("policy", "refused"),
    [(AdminPolicy.LIMITED, True), (AdminPolicy.EXEMPT, False)],
    ids=["limited", "exempt"],
)
async def test_admins_are_limited_unless_exempt(
    counters: Counted, policy: AdminPolicy, refused: bool
) -> None:
    limiter = _limiter(counters, Clock(4_000_000.0), admins=policy)
    admin = Subject("user:root", admin=True)

    verdicts = [await limiter.check(admin, KEY, protocol="http") for _ in range(3)]

    assert (not verdicts[2].admitted) is refused


async def test_callers_are_counted_apart(counters: Counted) -> None:
    clock = Clock(5_000_000.0)
    limiter = _limiter(counters, clock)

    first = [await limiter.check(CALLER, KEY, protocol="http") for _ in range(3)]
    other = [await limiter.check(Subject("user:ada"), KEY, protocol="http") for _ in range(2)]

    assert not first[2].admitted
    assert all(verdict.admitted for verdict in other)


async def test_calls_go_through_uncounted_while_nats_is_unreachable() -> None:
    store = JetStreamCounters("nats://127.0.0.1:1", keep_seconds=60)
    registry = CollectorRegistry()
    limiter = Limiter(
        RateLimitSettings(rules=(Rule(KEY, Limit(1, 10.0)),)), store, metrics_registry=registry
    )
    await store.start()
    try:
        verdicts = [await limiter.check(CALLER, KEY, protocol="http") for _ in range(3)]
    finally:
        await store.close()

    assert all(verdict.admitted for verdict in verdicts)
    assert registry.get_sample_value("plugmesh_gateway_rate_limit_unchecked_total") == 3
    assert not store.ready


async def test_refusals_are_counted_by_protocol(counters: Counted) -> None:
    registry = CollectorRegistry()
    limits = RateLimitSettings(rules=(Rule(KEY, Limit(1, 10.0)),))
    limiter = Limiter(limits, counters, metrics_registry=registry, clock=Clock(6_000_000.0))

    for _ in range(3):
        await limiter.check(CALLER, KEY, protocol="grpc")

    sample = registry.get_sample_value("plugmesh_gateway_rate_limited_total", {"protocol": "grpc"})
    assert sample == 2


async def test_only_the_first_refusal_of_a_window_is_told(counters: Counted) -> None:
    clock = Clock(6_000_003.0)
    told: list[Exceeded] = []
    limits = RateLimitSettings(rules=(Rule(KEY, Limit(2, 10.0)),))
    limiter = Limiter(
        limits, counters, metrics_registry=CollectorRegistry(), clock=clock, on_exceeded=told.append
    )

    for _ in range(6):
        await limiter.check(CALLER, KEY, protocol="http")
    clock.now = 6_000_010.0
    for _ in range(3):
        await limiter.check(CALLER, KEY, protocol="grpc")

    assert [(e.subject, e.key, e.protocol, e.window_end_seconds) for e in told] == [
        (CALLER, KEY, "http", 6_000_010.0),
        (CALLER, KEY, "grpc", 6_000_020.0),
    ]


def _exceeded(subject: str, window_end_seconds: float = 6_000_010.0) -> Exceeded:
    return Exceeded(
        Subject(subject), KEY, Limit(2, 10.0), window_end_seconds, "http", f"c-{subject}.600001"
    )


@pytest.mark.parametrize(
    ("subject", "actor_type", "actor_id"),
    [
        ("machine:mu_1", event_pb2.ACTOR_TYPE_MACHINE, "mu_1"),
        ("user:ada", event_pb2.ACTOR_TYPE_USER, "ada"),
        ("address:127.0.0.1", event_pb2.ACTOR_TYPE_ANONYMOUS, "127.0.0.1"),
    ],
    ids=["machine", "person", "anonymous"],
)
def test_the_exceeded_event_names_the_caller_the_key_and_the_window(
    subject: str, actor_type: int, actor_id: str
) -> None:
    event = exceeded_event(_exceeded(subject), source="/plugmesh/gateway")
    payload = unpack_payload(event)

    assert isinstance(payload, rate_limit_events_pb2.RateLimitExceeded)
    assert (payload.actor.type, payload.actor.id) == (actor_type, actor_id)
    assert (payload.key, payload.limit, payload.protocol) == (KEY, 2, "http")
    assert payload.window.ToSeconds() == 10
    assert payload.window_end_time.ToSeconds() == 6_000_010
    assert event.type == "rate_limit.exceeded"


def test_every_replica_gives_a_windows_exceeded_event_the_same_id() -> None:
    one = exceeded_event(_exceeded("machine:mu_1"), source="/plugmesh/gateway")
    again = exceeded_event(_exceeded("machine:mu_1"), source="/plugmesh/gateway")
    other = exceeded_event(_exceeded("machine:mu_2"), source="/plugmesh/gateway")

    assert one.id == again.id != other.id


async def test_a_caller_named_by_a_rule_gets_its_own_limit(counters: Counted) -> None:
    limits = RateLimitSettings(
        rules=(Rule(KEY, Limit(4, 10.0), caller="machine:ci-*"), Rule(KEY, Limit(1, 10.0)))
    )
    limiter = Limiter(limits, counters, metrics_registry=CollectorRegistry(), clock=Clock(7e6))

    named = [
        await limiter.check(Subject("machine:ci-deploy"), KEY, protocol="http") for _ in range(5)
    ]
    other = [await limiter.check(CALLER, KEY, protocol="http") for _ in range(2)]

    assert [verdict.admitted for verdict in named] == [True] * 4 + [False]
    assert [verdict.admitted for verdict in other] == [True, False]
