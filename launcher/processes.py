"""The processes of the mesh and the environment variables that configure them.

:data:`PROCESSES` is the one table of what ``plugmesh up`` starts and ``plugmesh serve``
runs: each process's name, its Python module, and the variables holding its addresses,
with the defaults each process declares in its own configuration module.
:data:`ENVIRONMENT` is the one table of every ``PLUGMESH_`` variable and of the standard
``OTEL_`` ones the processes read; the README's configuration table is generated from it
(``python -m launcher.processes``).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import addresses as gateway
from gateway.front_door import VARIABLES as FRONT_DOOR_VARIABLES
from meshkit.config import DEFAULT_NATS_ADDRESS, address_variable, metrics_variable
from meshkit.events.settings import VARIABLES as EVENT_VARIABLES
from meshkit.otel_settings import VARIABLES as OTEL_VARIABLES
from meshkit.tls_settings import VARIABLES as TLS_VARIABLES
from registry import config as registry
from services.audit import config as audit
from services.machineusers import config as machineusers
from services.secretsguard import config as secretsguard
from services.toolpins import config as toolpins
from services.users import config as users

__all__ = [
    "ENVIRONMENT",
    "NATS",
    "PROCESSES",
    "EnvVar",
    "ProcessSpec",
    "environment_table",
    "needed_variables",
    "process_named",
    "process_names",
]

#: Name of the embedded NATS server in ``plugmesh serve`` and in progress output.
NATS = "nats"


@dataclass(frozen=True)
class EnvVar:
    """One configuration variable: its name, default and meaning.

    ``secret`` marks a value that deployments take from a secret store (an env file, a
    Kubernetes Secret), never from a file committed in plain text.
    """

    name: str
    default: str
    description: str
    secret: bool = False


@dataclass(frozen=True)
class ProcessSpec:
    """One Python process of the mesh.

    Attributes:
        name: Name in ``plugmesh serve <name>``, in logs and in the registry.
        module: Module run as ``python -m <module>``; its ``__main__`` has ``main()``.
        listen: Its listen addresses with their defaults, which the process declares; the
            first is its gRPC address, the one waited on at start.
        metrics_address: Where it serves its metrics under ``plugmesh up`` unless its
            metrics variable says otherwise.
        registers: Whether it registers itself with the registry (the registry does not).
        uses_database: Whether it keeps state in a database (``PLUGMESH_DATABASE_URL``).
        uses_nats: Whether it connects to NATS (``PLUGMESH_NATS_URL``).
    """

    name: str
    module: str
    listen: tuple[EnvVar, ...]
    metrics_address: str
    registers: bool = True
    uses_database: bool = False
    uses_nats: bool = False

    @property
    def metrics(self) -> EnvVar:
        """The variable holding the address of its Prometheus metrics."""
        return EnvVar(
            metrics_variable(self.name),
            self.metrics_address,
            f"HTTP address of the {self.name} process's Prometheus metrics (`/metrics`); the"
            " default is `plugmesh up`'s, a process started on its own serves them only"
            " when this is set",
        )

    @property
    def address_vars(self) -> tuple[str, ...]:
        """Variables holding its addresses: the listen ones, then the metrics one."""
        return (*(var.name for var in self.listen), self.metrics.name)

    @property
    def grpc_address_var(self) -> str:
        """The variable holding the gRPC address."""
        return self.listen[0].name

    @property
    def metrics_address_var(self) -> str:
        """The variable holding the address of its Prometheus metrics."""
        return self.metrics.name


def _grpc(process: str, default: str) -> EnvVar:
    return EnvVar(address_variable(process), default, f"gRPC address of the {process} process")


#: Every Python process, in start order: the registry first, the others depend on it.
PROCESSES: tuple[ProcessSpec, ...] = (
    ProcessSpec(
        "registry",
        "registry",
        (_grpc("registry", registry.DEFAULT_ADDRESS),),
        registry.METRICS_ADDRESS,
        registers=False,
        uses_database=True,
        uses_nats=True,
    ),
    ProcessSpec(
        "gateway",
        "gateway",
        (
            EnvVar(
                address_variable("gateway-grpc"),
                gateway.DEFAULT_GRPC_ADDRESS,
                "gRPC address of the gateway (ingress proxy, aggregated reflection)",
            ),
            EnvVar(
                address_variable("gateway-http"),
                gateway.DEFAULT_HTTP_ADDRESS,
                "HTTP/JSON address of the gateway",
            ),
            EnvVar(
                address_variable("gateway-mcp-servers"),
                gateway.DEFAULT_MCP_SERVERS_ADDRESS,
                "gRPC address of the gateway's admin API of the upstream MCP servers"
                " (registered as `mcp-servers`)",
            ),
        ),
        gateway.METRICS_ADDRESS,
        uses_database=True,
        uses_nats=True,
    ),
    ProcessSpec(
        "users",
        "services.users",
        (_grpc("users", users.DEFAULT_ADDRESS),),
        users.METRICS_ADDRESS,
        uses_database=True,
        uses_nats=True,
    ),
    ProcessSpec(
        "audit",
        "services.audit",
        (_grpc("audit", audit.DEFAULT_ADDRESS),),
        audit.METRICS_ADDRESS,
        uses_database=True,
        uses_nats=True,
    ),
    ProcessSpec(
        "machine-users",
        "services.machineusers",
        (_grpc("machine-users", machineusers.DEFAULT_ADDRESS),),
        machineusers.METRICS_ADDRESS,
        uses_database=True,
        uses_nats=True,
    ),
    ProcessSpec(
        "secrets-guard",
        "services.secretsguard",
        (_grpc("secrets-guard", secretsguard.DEFAULT_ADDRESS),),
        secretsguard.METRICS_ADDRESS,
    ),
    ProcessSpec(
        "tool-pins",
        "services.toolpins",
        (_grpc("tool-pins", toolpins.DEFAULT_ADDRESS),),
        toolpins.METRICS_ADDRESS,
        uses_database=True,
        uses_nats=True,
    ),
)


#: Every ``PLUGMESH_`` variable, then the ``OTEL_`` ones. A port of 0 in an address makes
#: ``plugmesh up`` pick a free port and hand the concrete address to every child.
ENVIRONMENT: tuple[EnvVar, ...] = (
    EnvVar(
        "PLUGMESH_DATA_DIR",
        "./.plugmesh",
        "state: SQLite databases, JetStream store, logs/, registration.secret, admin.token",
    ),
    EnvVar(
        "PLUGMESH_NATS_URL",
        "(embedded)",
        "external NATS (with JetStream); when unset `plugmesh up` runs an embedded nats-server",
    ),
    EnvVar(
        "PLUGMESH_NATS_ADDRESS",
        DEFAULT_NATS_ADDRESS,
        "listen address of the embedded nats-server",
    ),
    *(var for spec in PROCESSES for var in spec.listen),
    *(spec.metrics for spec in PROCESSES),
    EnvVar(
        "PLUGMESH_REGISTRATION_SECRET",
        "(generated)",
        "shared secret a process needs to register; `plugmesh up` generates one into "
        "<data dir>/registration.secret (mode 0600) when unset",
        secret=True,
    ),
    # Mutual TLS inside the mesh (meshkit.tls_settings.VARIABLES), and how `plugmesh up`
    # makes its certificates.
    *(EnvVar(name, default, meaning) for name, default, meaning in TLS_VARIABLES),
    EnvVar(
        "PLUGMESH_NATS_TLS",
        "on",
        "with the PLUGMESH_TLS_* files set, NATS connections are TLS presenting the same"
        " certificate and trusting the same CA (the embedded nats-server of `plugmesh up`"
        " requires it); `off` for a NATS that does not know the mesh CA",
    ),
    EnvVar(
        "PLUGMESH_MESH_TLS",
        "on",
        "`plugmesh up` makes a mesh CA and a certificate per process in <data dir>/tls and"
        " runs every internal gRPC hop over mutual TLS; `off` runs the mesh in plaintext",
    ),
    EnvVar(
        "PLUGMESH_MESH_TLS_CERT_LIFETIME_SECONDS",
        "604800",
        "lifetime of the certificates `plugmesh up` issues; each is renewed after two thirds"
        " of it, while the mesh runs, without a restart",
    ),
    EnvVar(
        "PLUGMESH_DATABASE_URL",
        "(SQLite in the data dir)",
        "database of every process, for example postgresql+psycopg://…",
        secret=True,
    ),
    EnvVar("PLUGMESH_LOG_LEVEL", "INFO", "DEBUG, INFO, WARNING or ERROR"),
    EnvVar(
        "PLUGMESH_SHUTDOWN_GRACE_SECONDS",
        "5",
        "how long a process lets in-flight calls finish on SIGTERM",
    ),
    EnvVar(
        "PLUGMESH_ADVERTISE_HOST",
        "(the listen host)",
        "host a process registers under; a process listening on 0.0.0.0 without it"
        " registers under the address its host name resolves to",
    ),
    EnvVar(
        "PLUGMESH_REGISTRY_DATABASE_URL",
        "(PLUGMESH_DATABASE_URL)",
        "the registry's own database, when it should differ from the others'",
        secret=True,
    ),
    EnvVar(
        "PLUGMESH_REGISTRY_LEASE_SECONDS",
        "10",
        "how long a registration lives without a renewal",
    ),
    EnvVar(
        "PLUGMESH_REGISTRY_REFLECTION_TIMEOUT_SECONDS",
        "5",
        "deadline for fetching an instance's schema over server reflection",
    ),
    *(EnvVar(name, default, meaning) for name, default, meaning in EVENT_VARIABLES),
    EnvVar(
        "PLUGMESH_GATEWAY_GRPC_DEFAULT_DEADLINE_SECONDS",
        "30",
        "deadline of a call through the gateway's gRPC port whose client sets none (calls"
        " with a single response; response streams stay open)",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_GRPC_MAX_MESSAGE_BYTES",
        "4194304",
        "largest request message the gateway's gRPC port accepts",
    ),
    # TLS at the gateway's front door (gateway.front_door.VARIABLES).
    *(EnvVar(name, default, meaning) for name, default, meaning in FRONT_DOOR_VARIABLES),
    EnvVar(
        "PLUGMESH_GATEWAY_ACCESS_LOG",
        "on",
        "one JSON line per HTTP request and gRPC call in the gateway's log (method, route, "
        "status, duration, trace id, request id, caller; never a credential); `off` leaves "
        "them out",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_CORS_ALLOWED_ORIGINS",
        "(none)",
        "browser origins that may call the gateway (`https://app.example`, comma-separated, "
        "or `*`): their preflights are answered and their answers readable; off when unset",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_HTTP_BODY_LIMIT_BYTES",
        "4194304",
        "largest HTTP request body the gateway accepts; larger ones get 413",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_HTTP_TIMEOUT_SECONDS",
        "30",
        "deadline of an HTTP call through the gateway without a grpc-timeout header",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_HTTP_MAX_TIMEOUT_SECONDS",
        "300",
        "upper bound of any HTTP call's deadline, grpc-timeout included",
    ),
    # The gateway's authentication (gateway.auth.settings.VARIABLES).
    EnvVar(
        "PLUGMESH_GATEWAY_JWT_HS256_SECRET",
        "(none)",
        "secret that verifies HS256 JWTs of people (claims `sub`, `email`); with no JWT key"
        " the gateway accepts machine tokens only",
        secret=True,
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_JWT_RS256_PUBLIC_KEY",
        "(none)",
        "PEM public key, or the path of a PEM file, that verifies RS256 JWTs of people",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_JWT_ISSUER",
        "(any)",
        "the `iss` a JWT must carry, when set; the MCP endpoint's protected resource metadata"
        " names it as authorization server",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_JWT_AUDIENCE",
        "(any)",
        "the `aud` a JWT must carry, when set; required with an OpenID Connect issuer",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_JWT_LEEWAY_SECONDS",
        "30",
        "clock skew allowed when checking a JWT's `exp` and `nbf`",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_AUTH_CACHE_TTL_SECONDS",
        "10",
        "how long the gateway trusts a machine token it validated; dropped at once on"
        " `machine_user.deleted`, `machine_user.token_rotated` and `machine_user.updated`"
        " (0: never cached)",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_AUTH_TIMEOUT_SECONDS",
        "5",
        "deadline of the gateway's calls that validate a machine token or look up a role",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_AUTH_FAILED_EVENTS_PER_SECOND",
        "20",
        "most `auth.failed` events the gateway publishes a second (bursts of ten times"
        " that); refusals beyond it are still refused, counted and logged, not published",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_OIDC_ISSUER",
        "(none)",
        "OpenID Connect issuer (`https://idp.example/realms/x`) whose JWTs of people the"
        " gateway accepts: its discovery document and JWKS are fetched, cached and"
        " refreshed; a token's `kid` picks the key, its `iss` must be this issuer and its"
        " `aud` the one configured",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_OIDC_ALGORITHMS",
        "RS256,ES256,EdDSA",
        "signature algorithms accepted with the issuer's keys (comma-separated; RS*, PS*,"
        " ES*, EdDSA); a key is used only with the algorithm its type and `alg` allow",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_OIDC_REFRESH_SECONDS",
        "3600",
        "how often the issuer's discovery document and JWKS are fetched again",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_OIDC_MIN_REFRESH_SECONDS",
        "30",
        "least time between two fetches: a token naming an unknown `kid` triggers one at"
        " most this often, then is refused",
    ),
    # The gateway's MCP front (gateway.mcpfront.settings.VARIABLES).
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_RESOURCE_URL",
        "(from the request)",
        "the MCP endpoint's public URL (`https://mcp.example.com/mcp`), named in the protected"
        " resource metadata and in 401 answers; unset, it is made from each request's `Host`"
        " and scheme",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_ALLOWED_HOSTS",
        "(loopback)",
        "comma-separated `Host` values `/mcp` accepts (`host`, `host:port`, `host:*`) besides"
        " the loopback ones and the resource URL's; `*` turns the DNS-rebinding checks off",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_ALLOWED_ORIGINS",
        "(loopback)",
        "comma-separated `Origin` values `/mcp` accepts (`https://app.example.com`, `…:*`)"
        " besides the loopback ones and the resource URL's; requests without `Origin` pass",
    ),
    EnvVar("PLUGMESH_GATEWAY_MCP_PAGE_SIZE", "100", "most tools in one `tools/list` page"),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_BODY_LIMIT_BYTES",
        "4194304",
        "largest MCP request body; larger ones get 413 with a JSON-RPC error",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_SERVERS_FILE",
        "(none)",
        "a JSON file of upstream MCP servers, in the `mcpServers` format MCP clients use"
        " (see *Upstream MCP servers*): those the database does not have yet are added at"
        " start",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_CALL_ARGUMENTS",
        "keys",
        "what of a tool call's arguments its `tool.call.started` event (and so the audit"
        " log) records: `keys` (their names, every value `[redacted]`), `full` (as sent)"
        " or `none`",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_MCP_REQUIRED_HOOKS",
        "(none)",
        "comma-separated names of tool-call hook plugins every `tools/call` must pass: while"
        " one is not in the mesh every call is denied, and its failures count as denies"
        " whatever failure mode it declares (see *Tool-call hooks*)",
    ),
    # The gateway's rate limits (gateway.ratelimit.settings.VARIABLES).
    EnvVar(
        "PLUGMESH_GATEWAY_RATE_LIMIT",
        "off",
        "calls one caller may make per RPC or MCP tool in a window (`100/1m`, `5/10s`, "
        "`20/s`), counted in NATS for every gateway replica; beyond it HTTP 429 with "
        "`Retry-After`, gRPC RESOURCE_EXHAUSTED, a JSON-RPC error on `/mcp` (see *Rate limits*); "
        "`off`: no limit",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_RATE_LIMIT_RULES",
        "(none)",
        "comma-separated `[<caller glob>@]<key glob>=<limit>` overriding the default for"
        " the keys (and callers) the globs match (`/plugmesh.users.v1.UserService/*=10/1s`,"
        " `github/create_issue=5/1m`, `machine:<id>@*=6000/1m`, `address:*@*=10/1s`,"
        " `/plugmesh.audit.v1.AuditService/*=off`); the first match decides",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_RATE_LIMIT_ADMINS",
        "limited",
        "`limited`: admins are counted like every caller; `exempt`: no limit for admins (mesh"
        " services, with the registration secret, are never limited)",
    ),
    EnvVar(
        "PLUGMESH_GATEWAY_RATE_LIMIT_TIMEOUT_SECONDS",
        "0.5",
        "how long a call waits for its count from NATS; past it, or while NATS is away, the "
        "call goes through uncounted (the limits fail open)",
    ),
    EnvVar(
        "PLUGMESH_AUDIT_RETENTION_DAYS",
        "0",
        "the audit log prunes entries recorded longer ago, keeping the rest verifiable"
        " (0: keeps every entry)",
    ),
    EnvVar(
        "PLUGMESH_AUDIT_PRUNE_INTERVAL_SECONDS",
        "3600",
        "time between the audit log's pruning passes, when a retention is set",
    ),
    # The machine-users plugin (services.machineusers.config.VARIABLES).
    EnvVar(
        "PLUGMESH_MACHINE_USERS_MAX_LIFETIME_SECONDS",
        "31536000",
        "longest lifetime of a machine user and its tokens; a machine user created without"
        " an expiry gets this one (0: no limit)",
    ),
    EnvVar(
        "PLUGMESH_MACHINE_USERS_LAST_USED_INTERVAL_SECONDS",
        "60",
        "a machine user's last-used time is written at most this often (not once per request)",
    ),
    # OpenTelemetry, every process (meshkit.otel_settings.VARIABLES); export headers may
    # carry a collector's API key.
    *(
        EnvVar(name, default, meaning, secret=name.endswith("_HEADERS"))
        for name, default, meaning in OTEL_VARIABLES
    ),
)


def needed_variables(spec: ProcessSpec) -> tuple[str, ...]:
    """The variables ``spec`` needs when it runs on its own (a container), not under
    ``plugmesh up``, which sets them: where it listens, where the registry is, the
    registration secret, and its NATS and database when it uses them.

    ``PLUGMESH_ADVERTISE_HOST`` is not among them: a process listening on 0.0.0.0
    without it registers under the address its host name resolves to; nor is its metrics
    address: without it, the process serves no metrics.
    """
    listens = [var.name for var in spec.listen]
    needed = [*listens, address_variable("registry"), "PLUGMESH_REGISTRATION_SECRET"]
    if spec.uses_nats:
        needed.append("PLUGMESH_NATS_URL")
    if spec.uses_database:
        needed.append("PLUGMESH_DATABASE_URL")
    return tuple(dict.fromkeys(needed))


def process_names() -> tuple[str, ...]:
    """Names ``plugmesh serve`` accepts: ``nats`` and every Python process."""
    return (NATS, *(spec.name for spec in PROCESSES))


def process_named(name: str) -> ProcessSpec:
    """Return the process called ``name``.

    Raises:
        KeyError: No process has that name.
    """
    for spec in PROCESSES:
        if spec.name == name:
            return spec
    raise KeyError(name)


def environment_table() -> str:
    """Render :data:`ENVIRONMENT` as a Markdown table for the README."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    lines += [f"| `{v.name}` | `{v.default}` | {v.description} |" for v in ENVIRONMENT]
    return "\n".join(lines)


if __name__ == "__main__":
    print(environment_table())
