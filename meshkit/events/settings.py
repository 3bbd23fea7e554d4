"""The event bus's settings, read once from ``PLUGMESH_EVENTS_*`` variables.

:data:`VARIABLES` names and describes each one; the plugmesh command lists them in
the mesh's one table of environment variables.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import ConfigError

__all__ = ["RETENTIONS", "STORAGES", "VARIABLES", "EventSettings"]

RETENTIONS = ("limits", "interest")
STORAGES = ("file", "memory")

#: Every variable: (name, default as shown, meaning).
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "PLUGMESH_EVENTS_STREAM_MAX_AGE_SECONDS",
        "604800",
        "how long the event stream keeps an event (0: no limit)",
    ),
    (
        "PLUGMESH_EVENTS_STREAM_MAX_BYTES",
        "0",
        "size limit of the event stream; the oldest events go first (0: no limit)",
    ),
    (
        "PLUGMESH_EVENTS_STREAM_MAX_MSGS",
        "0",
        "how many events the event stream keeps at most (0: no limit)",
    ),
    (
        "PLUGMESH_EVENTS_STREAM_RETENTION",
        "limits",
        "`limits` keeps events until a limit removes them; `interest` until every "
        "consumer acknowledged them",
    ),
    ("PLUGMESH_EVENTS_STREAM_STORAGE", "file", "`file` or `memory` storage of the streams"),
    ("PLUGMESH_EVENTS_STREAM_REPLICAS", "1", "replicas of the streams in a NATS cluster"),
    (
        "PLUGMESH_EVENTS_DEDUPE_WINDOW_SECONDS",
        "120",
        "window in which JetStream drops a second publish of the same event id",
    ),
    (
        "PLUGMESH_EVENTS_DLQ_MAX_AGE_SECONDS",
        "2592000",
        "how long the dead-letter stream keeps a dead letter (0: no limit)",
    ),
    (
        "PLUGMESH_EVENTS_MAX_ATTEMPTS",
        "5",
        "handler attempts per event before it goes to the dead-letter subject",
    ),
    (
        "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS",
        "500",
        "delay before the second attempt of a failed handler; doubles each time",
    ),
    ("PLUGMESH_EVENTS_RETRY_MAX_MILLIS", "30000", "longest delay between handler attempts"),
    (
        "PLUGMESH_EVENTS_ACK_WAIT_SECONDS",
        "30",
        "how long JetStream waits for a consumer's ack before redelivering",
    ),
    (
        "PLUGMESH_EVENTS_FETCH_BATCH",
        "256",
        "events a subscriber handles in one transaction at most",
    ),
    ("PLUGMESH_EVENTS_OUTBOX_BATCH", "256", "outbox rows the relay publishes at once"),
    (
        "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS",
        "1000",
        "how often the relay looks for rows it was not woken for (other processes, crashes)",
    ),
    (
        "PLUGMESH_EVENTS_OUTBOX_RETRY_MAX_MILLIS",
        "5000",
        "longest wait of the relay between tries while NATS is unreachable",
    ),
    (
        "PLUGMESH_EVENTS_OUTBOX_KEEP_SENT_SECONDS",
        "86400",
        "how long sent outbox rows are kept (0: forever)",
    ),
    (
        "PLUGMESH_EVENTS_INBOX_KEEP_SECONDS",
        "1209600",
        "how long a consumer remembers a handled event id; keep it above the stream's max "
        "age (0: forever)",
    ),
    (
        "PLUGMESH_EVENTS_PUBLISH_TIMEOUT_SECONDS",
        "5",
        "how long a publish waits for JetStream's acknowledgement",
    ),
    (
        "PLUGMESH_EVENTS_METRICS_INTERVAL_MILLIS",
        "5000",
        "how often the outbox depth and the consumers' lag are sampled for the metrics",
    ),
)

_DEFAULTS = {name: default for name, default, _ in VARIABLES}


@dataclass(frozen=True)
class EventSettings:
    """How the streams, the outbox relay and the subscribers behave.

    Every limit of 0 means "no limit".
    """

    stream_max_age_seconds: float = 604_800
    stream_max_bytes: int = 0
    stream_max_msgs: int = 0
    stream_retention: str = "limits"
    stream_storage: str = "file"
    stream_replicas: int = 1
    dedupe_window_seconds: float = 120
    dlq_max_age_seconds: float = 2_592_000
    max_attempts: int = 5
    retry_initial_millis: int = 500
    retry_max_millis: int = 30_000
    ack_wait_seconds: float = 30
    fetch_batch: int = 256
    outbox_batch: int = 256
    outbox_poll_millis: int = 1_000
    outbox_retry_max_millis: int = 5_000
    outbox_keep_sent_seconds: float = 86_400
    inbox_keep_seconds: float = 1_209_600
    publish_timeout_seconds: float = 5
    metrics_interval_millis: int = 5_000

    def __post_init__(self) -> None:
        if self.stream_retention not in RETENTIONS:
            raise ConfigError(
                f"PLUGMESH_EVENTS_STREAM_RETENTION must be one of {', '.join(RETENTIONS)}, "
                f"got {self.stream_retention!r}"
            )
        if self.stream_storage not in STORAGES:
            raise ConfigError(
                f"PLUGMESH_EVENTS_STREAM_STORAGE must be one of {', '.join(STORAGES)}, "
                f"got {self.stream_storage!r}"
            )
        positive = {
            "PLUGMESH_EVENTS_STREAM_REPLICAS": self.stream_replicas,
            "PLUGMESH_EVENTS_DEDUPE_WINDOW_SECONDS": self.dedupe_window_seconds,
            "PLUGMESH_EVENTS_MAX_ATTEMPTS": self.max_attempts,
            "PLUGMESH_EVENTS_ACK_WAIT_SECONDS": self.ack_wait_seconds,
            "PLUGMESH_EVENTS_FETCH_BATCH": self.fetch_batch,
            "PLUGMESH_EVENTS_OUTBOX_BATCH": self.outbox_batch,
            "PLUGMESH_EVENTS_OUTBOX_POLL_MILLIS": self.outbox_poll_millis,
            "PLUGMESH_EVENTS_OUTBOX_RETRY_MAX_MILLIS": self.outbox_retry_max_millis,
            "PLUGMESH_EVENTS_PUBLISH_TIMEOUT_SECONDS": self.publish_timeout_seconds,
            "PLUGMESH_EVENTS_METRICS_INTERVAL_MILLIS": self.metrics_interval_millis,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ConfigError(f"{name} must be greater than 0, got {value}")
        not_negative = {
            "PLUGMESH_EVENTS_STREAM_MAX_AGE_SECONDS": self.stream_max_age_seconds,
            "PLUGMESH_EVENTS_STREAM_MAX_BYTES": self.stream_max_bytes,
            "PLUGMESH_EVENTS_STREAM_MAX_MSGS": self.stream_max_msgs,
            "PLUGMESH_EVENTS_DLQ_MAX_AGE_SECONDS": self.dlq_max_age_seconds,
            "PLUGMESH_EVENTS_RETRY_INITIAL_MILLIS": self.retry_initial_millis,
            "PLUGMESH_EVENTS_RETRY_MAX_MILLIS": self.retry_max_millis,
            "PLUGMESH_EVENTS_OUTBOX_KEEP_SENT_SECONDS": self.outbox_keep_sent_seconds,
            "PLUGMESH_EVENTS_INBOX_KEEP_SECONDS": self.inbox_keep_seconds,
        }
        for name, value in not_negative.items():
            if value < 0:
                raise ConfigError(f"{name} must not be negative, got {value}")
        for name, max_age in (
            ("PLUGMESH_EVENTS_STREAM_MAX_AGE_SECONDS", self.stream_max_age_seconds),
            ("PLUGMESH_EVENTS_DLQ_MAX_AGE_SECONDS", self.dlq_max_age_seconds),
        ):
            if 0 < max_age < self.dedupe_window_seconds:
                raise ConfigError(
                    f"{name} ({max_age:g}) must not be shorter than "
                    f"PLUGMESH_EVENTS_DEDUPE_WINDOW_SECONDS ({self.dedupe_window_seconds:g})"
                )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EventSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        env = os.environ if env is None else env

        def raw(name: str) -> str:
            return (env.get(name) or _DEFAULTS[name]).strip()

        def number(name: str) -> float:
            try:
                return float(raw(name))
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw(name)!r}") from None

        def integer(name: str) -> int:
            try:
                return int(raw(name))
            except ValueError:
                raise ConfigError(f"{name} must be a whole number, got {raw(name)!r}") from None

        p = "PLUGMESH_EVENTS_"
        return cls(
            stream_max_age_seconds=number(p + "STREAM_MAX_AGE_SECONDS"),
            stream_max_bytes=integer(p + "STREAM_MAX_BYTES"),
            stream_max_msgs=integer(p + "STREAM_MAX_MSGS"),
            stream_retention=raw(p + "STREAM_RETENTION").lower(),
            stream_storage=raw(p + "STREAM_STORAGE").lower(),
            stream_replicas=integer(p + "STREAM_REPLICAS"),
            dedupe_window_seconds=number(p + "DEDUPE_WINDOW_SECONDS"),
            dlq_max_age_seconds=number(p + "DLQ_MAX_AGE_SECONDS"),
            max_attempts=integer(p + "MAX_ATTEMPTS"),
            retry_initial_millis=integer(p + "RETRY_INITIAL_MILLIS"),
            retry_max_millis=integer(p + "RETRY_MAX_MILLIS"),
            ack_wait_seconds=number(p + "ACK_WAIT_SECONDS"),
            fetch_batch=integer(p + "FETCH_BATCH"),
            outbox_batch=integer(p + "OUTBOX_BATCH"),
            outbox_poll_millis=integer(p + "OUTBOX_POLL_MILLIS"),
            outbox_retry_max_millis=integer(p + "OUTBOX_RETRY_MAX_MILLIS"),
            outbox_keep_sent_seconds=number(p + "OUTBOX_KEEP_SENT_SECONDS"),
            inbox_keep_seconds=number(p + "INBOX_KEEP_SECONDS"),
            publish_timeout_seconds=number(p + "PUBLISH_TIMEOUT_SECONDS"),
            metrics_interval_millis=integer(p + "METRICS_INTERVAL_MILLIS"),
        )

    def retry_delay_seconds(self, attempt: int) -> float:
        """The delay before the next attempt after attempt number ``attempt`` failed."""
        delay: int = self.retry_initial_millis * 2 ** max(0, min(attempt - 1, 30))
        return min(delay, self.retry_max_millis) / 1000
