"""The OpenTelemetry settings, read from the standard ``OTEL_*`` variables.

Traces are off unless an OTLP endpoint is set (``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
``OTEL_EXPORTER_OTLP_ENDPOINT``); ``OTEL_SDK_DISABLED=true`` or
``OTEL_TRACES_EXPORTER=none`` turn them off again. Only OTLP over gRPC is exported: a
``…_PROTOCOL`` other than ``grpc`` is refused at start rather than ignored. A trace-specific
variable (``OTEL_EXPORTER_OTLP_TRACES_*``) wins over its general one, as the specification
says. Reading them imports nothing of OpenTelemetry: that happens only when traces are on
(:func:`meshkit.spans.open_recorder`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from meshkit._env import ConfigError, env_number

__all__ = ["SAMPLERS", "VARIABLES", "OtelSettings"]

#: The samplers ``OTEL_TRACES_SAMPLER`` may name (those of the specification without
#: an extra package).
SAMPLERS = frozenset(
    {
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    }
)

#: ``(name, default, meaning)`` of every variable read here, for the README's table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "(none: traces off)",
        "OpenTelemetry collector to export spans to over OTLP/gRPC (`http://collector:4317`;"
        " `http://` sends in plain text); setting it turns traces on"
        " (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` wins when both are set; needs the `otel`"
        " extra)",
    ),
    (
        "OTEL_EXPORTER_OTLP_HEADERS",
        "(none)",
        "headers sent with every export, `key=value` comma-separated"
        " (`OTEL_EXPORTER_OTLP_TRACES_HEADERS` wins)",
    ),
    (
        "OTEL_EXPORTER_OTLP_TIMEOUT",
        "10000",
        "milliseconds one export may take (`OTEL_EXPORTER_OTLP_TRACES_TIMEOUT` wins)",
    ),
    (
        "OTEL_EXPORTER_OTLP_INSECURE",
        "false",
        "`true` exports in plain text to an endpoint without a scheme"
        " (`OTEL_EXPORTER_OTLP_TRACES_INSECURE` wins)",
    ),
    (
        "OTEL_SERVICE_NAME",
        "(the process's name)",
        "the spans' `service.name`; unset, each process is named after itself (`gateway`,"
        " `users`, …), which is what `plugmesh up` needs",
    ),
    (
        "OTEL_RESOURCE_ATTRIBUTES",
        "(none)",
        "more resource attributes, `key=value` comma-separated (`deployment.environment=prod`)",
    ),
    (
        "OTEL_TRACES_SAMPLER",
        "parentbased_always_on",
        "`always_on`, `always_off`, `traceidratio` or their `parentbased_` forms: a request"
        " whose caller sent a `traceparent` follows its sampled flag with the latter",
    ),
    (
        "OTEL_TRACES_SAMPLER_ARG",
        "1.0",
        "the ratio of traces the `traceidratio` samplers keep, 0 to 1",
    ),
    (
        "OTEL_BSP_SCHEDULE_DELAY",
        "5000",
        "milliseconds between two exports of the spans a process has ended",
    ),
    (
        "OTEL_SDK_DISABLED",
        "false",
        "`true` turns traces off whatever else is set (so does `OTEL_TRACES_EXPORTER=none`)",
    ),
)


@dataclass(frozen=True)
class OtelSettings:
    """Where and how spans are exported; ``endpoint`` empty means traces are off."""

    endpoint: str = ""
    insecure: bool = False
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_millis: float = 10_000.0
    service_name: str | None = None
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0
    schedule_delay_millis: float = 5_000.0

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded and exported."""
        return bool(self.endpoint)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OtelSettings:
        """Read the settings from ``env``.

        Raises:
            ConfigError: A variable holds what cannot be used; the message names it.
        """

        def get(name: str) -> str:
            # The traces-only variable wins over the general one.
            specific = env.get(name.replace("OTEL_EXPORTER_OTLP_", "OTEL_EXPORTER_OTLP_TRACES_"))
            return (specific or env.get(name) or "").strip()

        endpoint = get("OTEL_EXPORTER_OTLP_ENDPOINT")
        disabled = (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"
        exporter = (env.get("OTEL_TRACES_EXPORTER") or "otlp").strip().lower()
        if not endpoint or disabled or exporter == "none":
            return cls()
        if importlib.util.find_spec("opentelemetry.sdk") is None:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but OpenTelemetry is not installed:"
                " install plugmesh with its otel extra (plugmesh[otel])"
            )
        if exporter != "otlp":
            raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp or none, got {exporter!r}")
        protocol = get("OTEL_EXPORTER_OTLP_PROTOCOL") or "grpc"
        if protocol != "grpc":
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL must be grpc (plugmesh exports OTLP over gRPC),"
                f" got {protocol!r}"
            )
        scheme = urlsplit(endpoint).scheme if "://" in endpoint else ""
        if scheme not in ("", "http", "https"):
            raise ConfigError(
                f"OTEL_EXPORTER_OTLP_ENDPOINT must be http://, https:// or host:port,"
                f" got {endpoint!r}"
            )
        sampler = (env.get("OTEL_TRACES_SAMPLER") or "parentbased_always_on").strip().lower()
        if sampler not in SAMPLERS:
            raise ConfigError(
                f"OTEL_TRACES_SAMPLER must be one of {', '.join(sorted(SAMPLERS))}, got {sampler!r}"
            )
        ratio = env_number(env, "OTEL_TRACES_SAMPLER_ARG", 1.0, unit="a ratio from 0 to 1")
        if not 0.0 <= ratio <= 1.0:
            raise ConfigError(f"OTEL_TRACES_SAMPLER_ARG must be from 0 to 1, got {ratio}")
        insecure_variable = get("OTEL_EXPORTER_OTLP_INSECURE").lower()
        return cls(
            endpoint=endpoint,
            insecure=scheme == "http" or (scheme == "" and insecure_variable == "true"),
            headers=_pairs(get("OTEL_EXPORTER_OTLP_HEADERS"), "OTEL_EXPORTER_OTLP_HEADERS"),
            timeout_millis=_millis(
                "OTEL_EXPORTER_OTLP_TIMEOUT", get("OTEL_EXPORTER_OTLP_TIMEOUT"), 10_000.0
            ),
            service_name=(env.get("OTEL_SERVICE_NAME") or "").strip() or None,
            resource_attributes=_pairs(
                env.get("OTEL_RESOURCE_ATTRIBUTES") or "", "OTEL_RESOURCE_ATTRIBUTES"
            ),
            sampler=sampler,
            sampler_ratio=ratio,
            schedule_delay_millis=_millis(
                "OTEL_BSP_SCHEDULE_DELAY", env.get("OTEL_BSP_SCHEDULE_DELAY") or "", 5_000.0
            ),
        )


def _millis(name: str, raw: str, default: float) -> float:
    return env_number({name: raw}, name, default, positive=True, unit="milliseconds")


def _pairs(raw: str, name: str) -> dict[str, str]:
    """``key=value`` pairs, comma-separated, values percent-decoded (W3C Baggage form)."""
    pairs: dict[str, str] = {}
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name} must be key=value pairs separated by commas, got {raw!r}")
        pairs[key.strip()] = unquote(value.strip())
    return pairs
