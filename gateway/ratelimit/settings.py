"""Settings of the rate limits, read once at the entry point.

Every variable is listed, with its default and meaning, in :data:`VARIABLES` (and so in
the README's one table). A limit is written ``<count>/<window>``: ``100/1m``, ``5/10s``,
``20/s``, ``1000/1h``; ``off`` is no limit. A rule is ``<glob>=<limit>`` over the key a
call is counted under: ``/<package.Service>/<Method>`` for an RPC (called over HTTP or
gRPC alike), ``<server>/<tool>`` for an MCP tool. The first rule whose glob matches
decides; a key no rule matches gets the default.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from meshkit.config import ConfigError, env_number

__all__ = ["VARIABLES", "AdminPolicy", "Limit", "RateLimitSettings", "Rule", "parse_limit"]

DEFAULT = "PLUGMESH_GATEWAY_RATE_LIMIT"
RULES = "PLUGMESH_GATEWAY_RATE_LIMIT_RULES"
ADMINS = "PLUGMESH_GATEWAY_RATE_LIMIT_ADMINS"
TIMEOUT_SECONDS = "PLUGMESH_GATEWAY_RATE_LIMIT_TIMEOUT_SECONDS"

#: Every variable: (name, default as shown, meaning), for the README table.
VARIABLES: tuple[tuple[str, str, str], ...] = (
    (
        DEFAULT,
        "off",
        "calls one caller may make per RPC or MCP tool in a window (`100/1m`, `5/10s`,"
        " `20/s`), counted in NATS for every gateway replica; beyond it HTTP 429 with"
        " `Retry-After`, gRPC RESOURCE_EXHAUSTED, a JSON-RPC error on `/mcp` (see *Rate"
        " limits*); `off`: no limit",
    ),
    (
        RULES,
        "(none)",
        "comma-separated `[<caller glob>@]<key glob>=<limit>` overriding the default for"
        " the keys (and callers) the globs match (`/plugmesh.users.v1.UserService/*=10/1s`,"
        " `github/create_issue=5/1m`, `machine:<id>@*=6000/1m`, `address:*@*=10/1s`,"
        " `/plugmesh.audit.v1.AuditService/*=off`); the first match decides",
    ),
    (
        ADMINS,
        "limited",
        "`limited`: admins are counted like every caller; `exempt`: no limit for admins"
        " (mesh services, with the registration secret, are never limited)",
    ),
    (
        TIMEOUT_SECONDS,
        "0.5",
        "how long a call waits for its count from NATS; past it, or while NATS is away,"
        " the call goes through uncounted (the limits fail open)",
    ),
)

_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*([smh])\s*$")
_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0}


class AdminPolicy(enum.Enum):
    """Whether admins are limited."""

    LIMITED = "limited"
    EXEMPT = "exempt"


@dataclass(frozen=True)
class Limit:
    """At most ``count`` calls per window of ``window_seconds``, per caller and key."""

    count: int
    window_seconds: float

    def __str__(self) -> str:
        return f"{self.count}/{self.window_seconds:g}s"


@dataclass(frozen=True)
class Rule:
    """Keys matching ``pattern`` (an ``fnmatch`` glob), called by callers matching
    ``caller`` (a glob over ``machine:<id>``, ``user:<subject>``, ``address:<ip>``), get
    ``limit`` (None: unlimited)."""

    pattern: str
    limit: Limit | None
    caller: str = "*"

    def matches(self, caller: str, key: str) -> bool:
        """Whether the rule applies to ``caller`` calling ``key``."""
        return fnmatch.fnmatchcase(key, self.pattern) and fnmatch.fnmatchcase(caller, self.caller)


@dataclass(frozen=True)
class RateLimitSettings:
    """How callers are limited.

    Attributes:
        default: The limit of a key no rule matches; None: unlimited.
        rules: Overrides, the first match deciding.
        admins: Whether admins are limited.
        timeout_seconds: How long a call waits for its count before going through.
    """

    default: Limit | None = None
    rules: tuple[Rule, ...] = ()
    admins: AdminPolicy = AdminPolicy.LIMITED
    timeout_seconds: float = 0.5

    @property
    def enabled(self) -> bool:
        """Whether any key has a limit."""
        return self.default is not None or any(rule.limit is not None for rule in self.rules)

    @property
    def longest_window_seconds(self) -> float:
        """The longest window of any limit (0 when none): how long a count is kept."""
        limits = [self.default, *(rule.limit for rule in self.rules)]
        return max((limit.window_seconds for limit in limits if limit is not None), default=0.0)

    def limit_for(self, caller: str, key: str) -> Limit | None:
        """The limit of ``caller`` on ``key``: the first matching rule's, else the default."""
        for rule in self.rules:
            if rule.matches(caller, key):
                return rule.limit
        return self.default

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RateLimitSettings:
        """Read the settings from ``env`` (default: the process environment).

        Raises:
            ConfigError: A variable holds something unusable; the message names it.
        """
        values = os.environ if env is None else env
        admins = (values.get(ADMINS) or "").strip().lower() or AdminPolicy.LIMITED.value
        try:
            policy = AdminPolicy(admins)
        except ValueError:
            raise ConfigError(f"{ADMINS} must be limited or exempt, got {admins!r}") from None
        return cls(
            default=_limit(DEFAULT, values.get(DEFAULT) or "off"),
            rules=_rules(values.get(RULES) or ""),
            admins=policy,
            timeout_seconds=env_number(
                values, TIMEOUT_SECONDS, 0.5, positive=True, unit="a number of seconds"
            ),
        )


def parse_limit(text: str) -> Limit | None:
    """``100/1m`` → ``Limit(100, 60.0)``; ``off`` → None.

    Raises:
        ValueError: ``text`` is not a limit.
    """
    if text.strip().lower() == "off":
        return None
    found = _LIMIT.match(text)
    if found is None:
        raise ValueError(f"a limit is <count>/<window> (100/1m, 5/10s) or off, got {text!r}")
    count, amount, unit = found.groups()
    window = float(amount or "1") * _UNIT_SECONDS[unit]
    if int(count) <= 0 or window <= 0:
        raise ValueError(f"a limit's count and window must be positive, got {text!r}")
    return Limit(int(count), window)


def _limit(name: str, text: str) -> Limit | None:
    try:
        return parse_limit(text)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _rules(text: str) -> tuple[Rule, ...]:
    rules: list[Rule] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pattern, equals, limit = item.rpartition("=")
        # Keys never hold "@"; a person's subject may (an email), so the last one splits.
        caller, at, key = pattern.rpartition("@")
        if not equals or not key.strip() or (at and not caller.strip()):
            raise ConfigError(
                f"{RULES}: a rule is [<caller glob>@]<key glob>=<limit>, got {item!r}"
            )
        rules.append(Rule(key.strip(), _limit(RULES, limit), caller.strip() if at else "*"))
    return tuple(rules)
