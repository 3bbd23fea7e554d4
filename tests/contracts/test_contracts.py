"""The protos declare what the gateway, the registry and the plugins rely on.

Read from the generated descriptors: HTTP routes, access levels, idempotency, event payloads
and plugin metadata. Every `*_pb2` module under `plugmesh` is inspected, so a new proto is
held to the same rules without touching this file.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import NamedTuple

import pytest
import semver
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import (
    Descriptor,
    FieldDescriptor,
    FileDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)

import plugmesh
from plugmesh.events.v1 import event_pb2, user_events_pb2
from plugmesh.options.v1 import options_pb2

Access = options_pb2.Access
Idempotency = descriptor_pb2.MethodOptions.IdempotencyLevel

USERS = "plugmesh.users.v1.UserService"
AUDIT = "plugmesh.audit.v1.AuditService"
MACHINE_USERS = "plugmesh.machineusers.v1.MachineUserService"
MCP_SERVERS = "plugmesh.mcp.v1.McpServerService"
HOOKS = "plugmesh.mcp.v1.ToolCallHookService"
SECRETS_GUARD = "plugmesh.secretsguard.v1.SecretsGuardService"
TOOL_PINS = "plugmesh.toolpins.v1.ToolPinService"
EVENTS_PACKAGE = "plugmesh.events.v1"
# Messages of the events package that are parts of payloads, not payloads.
ENVELOPE_MESSAGES = {"Event", "Actor", "HookDecision"}
# Services many plugins serve, each as itself: they belong to no one plugin.
INTERFACES = {HOOKS}


def _load_files() -> list[FileDescriptor]:
    files: list[FileDescriptor] = []
    for info in pkgutil.walk_packages(plugmesh.__path__, "plugmesh."):
        if info.name.endswith("_pb2"):
            files.append(importlib.import_module(info.name).DESCRIPTOR)
    return files


FILES = _load_files()
SERVICES: dict[str, ServiceDescriptor] = {
    s.full_name: s for f in FILES for s in f.services_by_name.values()
}
METHODS: dict[str, MethodDescriptor] = {
    m.full_name: m for s in SERVICES.values() for m in s.methods
}
MESSAGES: list[Descriptor] = [m for f in FILES for m in f.message_types_by_name.values()]
PAYLOADS: list[Descriptor] = [
    m for m in MESSAGES if m.file.package == EVENTS_PACKAGE and m.name not in ENVELOPE_MESSAGES
]


class Binding(NamedTuple):
    """One HTTP binding of an RPC: a google.api.http rule or one of its additional bindings."""

    method: str
    path: str
    rpc: str
    body: str


def _bindings(rpc: MethodDescriptor) -> list[Binding]:
    # The rule is found by name among the set options: google.api ships no py.typed, and the
    # extension is registered by every generated module that imports annotations.proto.
    rules = [v for f, v in rpc.GetOptions().ListFields() if f.full_name == "google.api.http"]
    found: list[Binding] = []
    for rule in [r for top in rules for r in [top, *top.additional_bindings]]:
        kind = rule.WhichOneof("pattern")
        if kind == "custom":
            method, path = rule.custom.kind, rule.custom.path
        else:
            method, path = kind.upper(), getattr(rule, kind)
        found.append(Binding(method, path, rpc.full_name, rule.body))
    return found


BINDINGS = [b for m in METHODS.values() for b in _bindings(m)]


def _event_type(message: Descriptor) -> str:
    options = message.GetOptions()
    if not options.HasExtension(options_pb2.event):
        return ""
    return options.Extensions[options_pb2.event].type


def _plugin(service: ServiceDescriptor) -> options_pb2.Plugin:
    return service.GetOptions().Extensions[options_pb2.plugin]


EVENT_TYPES = [
    "user.created",
    "user.updated",
    "user.deleted",
    "user.permissions.updated",
    "auth.login",
    "auth.logout",
    "auth.user.created",
    "auth.failed",
    "tool.call.started",
    "tool.call.completed",
    "tool.call.failed",
    "machine_user.created",
    "machine_user.deleted",
    "machine_user.token_rotated",
    "machine_user.updated",
    "registry.instance.registered",
    "registry.instance.deregistered",
    "registry.instance.health_changed",
    "registry.instance.expired",
    "mcp.server.created",
    "mcp.server.updated",
    "mcp.server.deleted",
    "mcp.hook.updated",
    "tool_pin.approved",
    "tool_pin.definition_changed",
    "tool_pin.deleted",
    "rate_limit.exceeded",
]

ROUTES = [
    Binding("POST", "/v1/users", f"{USERS}.CreateUser", "user"),
    Binding("GET", "/v1/users", f"{USERS}.ListUsers", ""),
    Binding("GET", "/v1/users/{user_id}", f"{USERS}.GetUser", ""),
    Binding("PATCH", "/v1/users/{user.user_id}", f"{USERS}.UpdateUser", "user"),
    Binding("DELETE", "/v1/users/{user_id}", f"{USERS}.DeleteUser", ""),
    Binding("PATCH", "/v1/users/{user_id}/permissions", f"{USERS}.UpdateUserPermissions", "*"),
    Binding("POST", "/v1/users/{user_id}:checkPermission", f"{USERS}.CheckPermission", "*"),
    Binding("GET", "/api/plugins/user-management/users", f"{USERS}.ListUsers", ""),
    Binding(
        "PATCH",
        "/api/plugins/user-management/users/{user_id}/permissions",
        f"{USERS}.UpdateUserPermissions",
        "*",
    ),
    Binding("DELETE", "/api/plugins/user-management/users/{user_id}", f"{USERS}.DeleteUser", ""),
    Binding("GET", "/v1/audit/entries", f"{AUDIT}.ListAuditEntries", ""),
    Binding("POST", "/v1/audit/entries", f"{AUDIT}.CreateAuditEntry", "entry"),
    Binding("GET", "/v1/audit/entries/{entry_id}", f"{AUDIT}.GetAuditEntry", ""),
    Binding("GET", "/v1/audit/entries:export", f"{AUDIT}.ExportAuditEntries", ""),
    Binding("POST", "/v1/audit/entries:verify", f"{AUDIT}.VerifyAuditChain", "*"),
    Binding("GET", "/api/plugins/logging/logs", f"{AUDIT}.ListAuditEntries", ""),
    Binding("POST", "/api/plugins/logging/logs", f"{AUDIT}.CreateAuditEntry", "entry"),
    Binding("GET", "/v1/machine-users", f"{MACHINE_USERS}.ListMachineUsers", ""),
    Binding("POST", "/v1/machine-users", f"{MACHINE_USERS}.CreateMachineUser", "machine_user"),
    Binding("GET", "/v1/machine-users/{machine_user_id}", f"{MACHINE_USERS}.GetMachineUser", ""),
    Binding(
        "DELETE", "/v1/machine-users/{machine_user_id}", f"{MACHINE_USERS}.DeleteMachineUser", ""
    ),
    Binding(
        "POST",
        "/v1/machine-users/{machine_user_id}:rotateToken",
        f"{MACHINE_USERS}.RotateMachineUserToken",
        "*",
    ),
    Binding(
        "PATCH",
        "/v1/machine-users/{machine_user.machine_user_id}",
        f"{MACHINE_USERS}.UpdateMachineUser",
        "machine_user",
    ),
    Binding(
        "POST",
        "/v1/machine-users/{machine_user_id}:checkPermission",
        f"{MACHINE_USERS}.CheckMachineUserPermission",
        "*",
    ),
    Binding("POST", "/v1/tokens:validate", f"{MACHINE_USERS}.ValidateToken", "*"),
    Binding(
        "GET", "/api/plugins/machine-users/machine-users", f"{MACHINE_USERS}.ListMachineUsers", ""
    ),
    Binding(
        "POST",
        "/api/plugins/machine-users/machine-users",
        f"{MACHINE_USERS}.CreateMachineUser",
        "machine_user",
    ),
    Binding(
        "DELETE",
        "/api/plugins/machine-users/machine-users/{machine_user_id}",
        f"{MACHINE_USERS}.DeleteMachineUser",
        "",
    ),
    Binding(
        "POST", "/api/plugins/machine-users/validate-token", f"{MACHINE_USERS}.ValidateToken", "*"
    ),
    Binding("POST", "/v1/mcp/servers", f"{MCP_SERVERS}.CreateServer", "server"),
    Binding("GET", "/v1/mcp/servers", f"{MCP_SERVERS}.ListServers", ""),
    Binding("GET", "/v1/mcp/servers/{name}", f"{MCP_SERVERS}.GetServer", ""),
    Binding("PATCH", "/v1/mcp/servers/{server.name}", f"{MCP_SERVERS}.UpdateServer", "server"),
    Binding("DELETE", "/v1/mcp/servers/{name}", f"{MCP_SERVERS}.DeleteServer", ""),
    Binding("GET", "/v1/mcp/servers/{name}/tools", f"{MCP_SERVERS}.ListServerTools", ""),
    Binding("POST", "/v1/mcp/servers/{name}:refresh", f"{MCP_SERVERS}.RefreshServer", "*"),
    Binding("GET", "/v1/mcp/hooks", f"{MCP_SERVERS}.ListHooks", ""),
    Binding("PATCH", "/v1/mcp/hooks/{hook.name}", f"{MCP_SERVERS}.UpdateHook", "hook"),
    Binding("POST", "/v1/secrets-guard:scan", f"{SECRETS_GUARD}.ScanText", "*"),
    Binding("GET", "/v1/secrets-guard/detectors", f"{SECRETS_GUARD}.ListDetectors", ""),
    Binding("POST", "/v1/tool-pins/{server}:approve", f"{TOOL_PINS}.ApproveServer", "*"),
    Binding("GET", "/v1/tool-pins", f"{TOOL_PINS}.ListToolPins", ""),
    Binding("DELETE", "/v1/tool-pins/{server}", f"{TOOL_PINS}.DeleteToolPins", ""),
]

READ = Idempotency.NO_SIDE_EFFECTS
SAFE_RETRY = Idempotency.IDEMPOTENT
UNKNOWN = Idempotency.IDEMPOTENCY_UNKNOWN

# RPC -> (who may call it, whether the gateway may retry it).
POLICIES = {
    f"{USERS}.CreateUser": (Access.ACCESS_ADMIN, UNKNOWN),
    f"{USERS}.GetUser": (Access.ACCESS_AUTHENTICATED, READ),
    f"{USERS}.ListUsers": (Access.ACCESS_ADMIN, READ),
    f"{USERS}.UpdateUser": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{USERS}.DeleteUser": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{USERS}.UpdateUserPermissions": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{USERS}.CheckPermission": (Access.ACCESS_AUTHENTICATED, READ),
    f"{AUDIT}.ListAuditEntries": (Access.ACCESS_AUTHENTICATED, READ),
    f"{AUDIT}.GetAuditEntry": (Access.ACCESS_AUTHENTICATED, READ),
    f"{AUDIT}.CreateAuditEntry": (Access.ACCESS_ADMIN, UNKNOWN),
    f"{AUDIT}.ExportAuditEntries": (Access.ACCESS_ADMIN, READ),
    f"{AUDIT}.VerifyAuditChain": (Access.ACCESS_ADMIN, READ),
    f"{MACHINE_USERS}.CreateMachineUser": (Access.ACCESS_ADMIN, UNKNOWN),
    f"{MACHINE_USERS}.GetMachineUser": (Access.ACCESS_ADMIN, READ),
    f"{MACHINE_USERS}.ListMachineUsers": (Access.ACCESS_ADMIN, READ),
    f"{MACHINE_USERS}.DeleteMachineUser": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{MACHINE_USERS}.RotateMachineUserToken": (Access.ACCESS_ADMIN, UNKNOWN),
    f"{MACHINE_USERS}.UpdateMachineUser": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{MACHINE_USERS}.CheckMachineUserPermission": (Access.ACCESS_AUTHENTICATED, READ),
    f"{MACHINE_USERS}.ValidateToken": (Access.ACCESS_PUBLIC, SAFE_RETRY),
    f"{MCP_SERVERS}.CreateServer": (Access.ACCESS_ADMIN, UNKNOWN),
    f"{MCP_SERVERS}.GetServer": (Access.ACCESS_ADMIN, READ),
    f"{MCP_SERVERS}.ListServers": (Access.ACCESS_ADMIN, READ),
    f"{MCP_SERVERS}.UpdateServer": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{MCP_SERVERS}.DeleteServer": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{MCP_SERVERS}.ListServerTools": (Access.ACCESS_ADMIN, READ),
    f"{MCP_SERVERS}.RefreshServer": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{MCP_SERVERS}.ListHooks": (Access.ACCESS_ADMIN, READ),
    f"{MCP_SERVERS}.UpdateHook": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{HOOKS}.PreToolCall": (Access.ACCESS_INTERNAL, UNKNOWN),
    f"{HOOKS}.PostToolCall": (Access.ACCESS_INTERNAL, UNKNOWN),
    f"{HOOKS}.FilterTools": (Access.ACCESS_INTERNAL, READ),
    f"{SECRETS_GUARD}.ScanText": (Access.ACCESS_AUTHENTICATED, READ),
    f"{SECRETS_GUARD}.ListDetectors": (Access.ACCESS_AUTHENTICATED, READ),
    f"{TOOL_PINS}.ApproveServer": (Access.ACCESS_ADMIN, SAFE_RETRY),
    f"{TOOL_PINS}.ListToolPins": (Access.ACCESS_ADMIN, READ),
    f"{TOOL_PINS}.DeleteToolPins": (Access.ACCESS_ADMIN, SAFE_RETRY),
}


# --- HTTP routes -------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=[f"{r.method} {r.path}" for r in ROUTES])
def test_route_is_declared_once_by_the_right_rpc(route: Binding) -> None:
    declared = [b for b in BINDINGS if (b.method, b.path) == (route.method, route.path)]
    assert declared == [route]


@pytest.mark.parametrize(
    "service", [USERS, AUDIT, MACHINE_USERS, MCP_SERVERS, SECRETS_GUARD, TOOL_PINS]
)
def test_service_declares_no_route_beyond_the_table(service: str) -> None:
    declared = {b for b in BINDINGS if b.rpc.startswith(f"{service}.")}
    assert declared == {r for r in ROUTES if r.rpc.startswith(f"{service}.")}


def _field_path_exists(message: Descriptor, path: str) -> bool:
    for name in path.split("."):
        field = message.fields_by_name.get(name)
        if field is None:
            return False
        if field.message_type is not None:
            message = field.message_type
    return True


@pytest.mark.parametrize("binding", BINDINGS, ids=[f"{b.method} {b.path}" for b in BINDINGS])
def test_route_variables_and_body_name_request_fields(binding: Binding) -> None:
    request = METHODS[binding.rpc].input_type
    variables = re.findall(r"\{([^}=]+)", binding.path)
    assert all(_field_path_exists(request, v) for v in variables), variables
    assert binding.body in ("", "*") or _field_path_exists(request, binding.body)


@pytest.mark.parametrize("rpc", sorted(METHODS))
def test_internal_rpcs_have_no_http_route(rpc: str) -> None:
    access = METHODS[rpc].GetOptions().Extensions[options_pb2.access]
    if access == Access.ACCESS_INTERNAL:
        assert _bindings(METHODS[rpc]) == []


# --- access and retries ------------------------------------------------------------------


@pytest.mark.parametrize("rpc", sorted(METHODS))
def test_every_rpc_declares_its_access_explicitly(rpc: str) -> None:
    options = METHODS[rpc].GetOptions()
    assert options.HasExtension(options_pb2.access)
    assert options.Extensions[options_pb2.access] != Access.ACCESS_UNSPECIFIED


@pytest.mark.parametrize(("rpc", "policy"), sorted(POLICIES.items()), ids=sorted(POLICIES))
def test_rpc_has_its_access_and_idempotency(rpc: str, policy: tuple[int, int]) -> None:
    options = METHODS[rpc].GetOptions()
    assert (options.Extensions[options_pb2.access], options.idempotency_level) == policy


@pytest.mark.parametrize("service", [USERS, AUDIT, MACHINE_USERS, MCP_SERVERS])
def test_every_rpc_of_the_plugins_is_in_the_policy_table(service: str) -> None:
    assert {m.full_name for m in SERVICES[service].methods} <= POLICIES.keys()


# --- plugin metadata ---------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(SERVICES.keys() - INTERFACES))
def test_every_service_declares_a_plugin_with_a_semver_version(service: str) -> None:
    assert SERVICES[service].GetOptions().HasExtension(options_pb2.plugin)
    assert semver.Version.is_valid(_plugin(SERVICES[service]).version)


DEPENDENCIES = [(s, d) for s in sorted(SERVICES) for d in _plugin(SERVICES[s]).dependencies]


@pytest.mark.parametrize(
    ("service", "dependency"), DEPENDENCIES, ids=[f"{s}->{d.service}" for s, d in DEPENDENCIES]
)
def test_dependency_names_a_service_whose_version_it_accepts(
    service: str, dependency: options_pb2.Dependency
) -> None:
    assert dependency.service in SERVICES, f"{service} depends on an unknown service"
    version = semver.Version.parse(_plugin(SERVICES[dependency.service]).version)
    ranges = [r.strip() for r in dependency.version_range.split(",") if r.strip()]
    assert all(version.match(r) for r in ranges)


def test_machine_users_optionally_depend_on_users_1_x() -> None:
    dependencies = list(_plugin(SERVICES[MACHINE_USERS]).dependencies)
    assert dependencies == [
        options_pb2.Dependency(service=USERS, version_range=">=1.0.0,<2.0.0", optional=True)
    ]


# --- events ------------------------------------------------------------------------------


@pytest.mark.parametrize("message", PAYLOADS, ids=[m.name for m in PAYLOADS])
def test_every_payload_declares_an_event_type(message: Descriptor) -> None:
    assert _event_type(message)


def _payload_name(event_type: str) -> str:
    """Return the payload message's full name: "user.created" -> "...UserCreated"."""
    return EVENTS_PACKAGE + "." + "".join(p.capitalize() for p in re.split(r"[._]", event_type))


@pytest.mark.parametrize("event_type", EVENT_TYPES)
def test_every_event_type_has_exactly_one_payload_named_after_it(event_type: str) -> None:
    declaring = [m.full_name for m in MESSAGES if _event_type(m) == event_type]
    assert declaring == [_payload_name(event_type)]


def test_no_payload_declares_a_type_outside_the_list() -> None:
    declared = {_event_type(m) for m in MESSAGES} - {""}
    assert declared == set(EVENT_TYPES)


PRODUCED = [(s, t) for s in sorted(SERVICES) for t in _plugin(SERVICES[s]).produces]
CONSUMED = [(s, p) for s in sorted(SERVICES) for p in _plugin(SERVICES[s]).consumes]


@pytest.mark.parametrize(("service", "event_type"), PRODUCED, ids=[t for _, t in PRODUCED])
def test_every_produced_type_has_a_payload(service: str, event_type: str) -> None:
    assert event_type in EVENT_TYPES, f"{service} produces {event_type} without a payload"


def _subject_matches(pattern: str, event_type: str) -> bool:
    wanted, tokens = pattern.split("."), event_type.split(".")
    for i, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > i
        if i >= len(tokens) or token not in ("*", tokens[i]):
            return False
    return len(tokens) == len(wanted)


@pytest.mark.parametrize(("service", "pattern"), CONSUMED, ids=[p for _, p in CONSUMED])
def test_every_consumed_pattern_matches_an_event_type(service: str, pattern: str) -> None:
    assert any(_subject_matches(pattern, t) for t in EVENT_TYPES), service


@pytest.mark.parametrize("message", PAYLOADS, ids=[m.name for m in PAYLOADS])
def test_every_payload_names_its_actor(message: Descriptor) -> None:
    actor = message.fields_by_name.get("actor")
    assert actor is not None
    assert actor.message_type is event_pb2.Actor.DESCRIPTOR


SECRET_FIELD_NAMES = {"token", "api_token", "secret", "password", "credential"}


def _field_names(message: Descriptor, seen: set[str]) -> set[str]:
    if message.full_name in seen or message.full_name.startswith("google.protobuf."):
        return set()
    seen.add(message.full_name)
    names = set(message.fields_by_name)
    for field in message.fields:
        if field.message_type is not None:
            names |= _field_names(field.message_type, seen)
    return names


@pytest.mark.parametrize("message", PAYLOADS, ids=[m.name for m in PAYLOADS])
def test_no_payload_can_carry_a_secret(message: Descriptor) -> None:
    assert not _field_names(message, set()) & SECRET_FIELD_NAMES


ENVELOPE_FIELDS = [
    ("id", FieldDescriptor.TYPE_STRING),
    ("source", FieldDescriptor.TYPE_STRING),
    ("specversion", FieldDescriptor.TYPE_STRING),
    ("type", FieldDescriptor.TYPE_STRING),
    ("time", FieldDescriptor.TYPE_MESSAGE),
    ("subject", FieldDescriptor.TYPE_STRING),
    ("datacontenttype", FieldDescriptor.TYPE_STRING),
    ("data", FieldDescriptor.TYPE_MESSAGE),
]


@pytest.mark.parametrize(("name", "kind"), ENVELOPE_FIELDS, ids=[n for n, _ in ENVELOPE_FIELDS])
def test_envelope_carries_the_cloudevents_attribute(name: str, kind: int) -> None:
    field = event_pb2.Event.DESCRIPTOR.fields_by_name[name]
    assert field.type == kind
    assert field.json_name == name


def test_envelope_payload_is_any_and_round_trips() -> None:
    payload = user_events_pb2.UserDeleted(actor=event_pb2.Actor(id="admin"))
    event = event_pb2.Event(type="user.deleted")
    event.data.Pack(payload)
    assert event.data.type_url == "type.googleapis.com/plugmesh.events.v1.UserDeleted"
    decoded = user_events_pb2.UserDeleted()
    assert event_pb2.Event.FromString(event.SerializeToString()).data.Unpack(decoded)
    assert decoded == payload
