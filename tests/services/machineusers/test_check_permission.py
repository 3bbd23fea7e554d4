"""CheckMachineUserPermission: the toolkit's decision on the stored permissions, with the
deciding rule, for admins and for the machine user itself only."""

from __future__ import annotations

import grpc
import pytest

from meshkit.identity import Identity, PrincipalKind
from plugmesh.machineusers.v1 import machineusers_pb2
from plugmesh.users.v1 import users_pb2
from tests.services.machineusers.support import ADMIN, ALICE, SERVICE, Api, failure

ALLOW, DENY = users_pb2.EFFECT_ALLOW, users_pb2.EFFECT_DENY
RULE = users_pb2.DECISION_REASON_RULE
ADMIN_FLAG = users_pb2.DECISION_REASON_ADMIN
DEFAULT_DENY = users_pb2.DECISION_REASON_DEFAULT_DENY

#: The permissions every decision below is made on.
RULES = [
    (ALLOW, "github/*"),
    (DENY, "github/delete_*"),
    (ALLOW, "*"),
    (DENY, "shell/*"),
]


async def _checked(api: Api, name: str, *, admin_flag: bool = False) -> str:
    """A machine user with :data:`RULES` (and the admin flag, if asked); its id."""
    user = machineusers_pb2.MachineUser(
        name=name,
        permissions=users_pb2.Permissions(
            admin=admin_flag,
            rules=[users_pb2.PermissionRule(effect=e, pattern=p) for e, p in RULES],
        ),
    )
    request = machineusers_pb2.CreateMachineUserRequest(machine_user=user)
    created = await api.stub.CreateMachineUser(request, metadata=api.metadata(ADMIN))
    return str(created.machine_user.machine_user_id)


@pytest.mark.parametrize(
    ("server", "tool", "allowed", "reason", "index"),
    [
        pytest.param("github", "create_issue", True, RULE, 0, id="first-allow-reported"),
        pytest.param("github", "delete_repo", False, RULE, 1, id="deny-wins"),
        pytest.param("slack", "post", True, RULE, 2, id="catch-all-allow"),
        pytest.param("shell", "run", False, RULE, 3, id="later-deny-beats-earlier-allow"),
    ],
)
async def test_the_decision_names_the_deciding_rule(
    api: Api, server: str, tool: str, allowed: bool, reason: int, index: int
) -> None:
    machine_user_id = await _checked(api, f"rules-{server}-{tool}".replace("_", "-"))

    answer = await api.check(machine_user_id, server, tool)

    assert (answer.allowed, answer.reason) == (allowed, reason)
    assert answer.matched_rule.index == index
    effect, pattern = RULES[index]
    assert answer.matched_rule.rule.effect == effect
    assert answer.matched_rule.rule.pattern == pattern


@pytest.mark.parametrize(
    ("rules", "admin_flag", "allowed", "reason"),
    [
        pytest.param((), False, False, DEFAULT_DENY, id="no-rule-default-deny"),
        pytest.param(("other/*",), False, False, DEFAULT_DENY, id="no-match-default-deny"),
        pytest.param(("other/*",), True, True, ADMIN_FLAG, id="admin-flag"),
    ],
)
async def test_without_a_deciding_rule_there_is_no_matched_rule(
    api: Api, rules: tuple[str, ...], admin_flag: bool, allowed: bool, reason: int
) -> None:
    user = machineusers_pb2.MachineUser(
        name=f"norule-{len(rules)}-{admin_flag}".lower(),
        permissions=users_pb2.Permissions(
            admin=admin_flag,
            rules=[users_pb2.PermissionRule(effect=ALLOW, pattern=p) for p in rules],
        ),
    )
    created = await api.stub.CreateMachineUser(
        machineusers_pb2.CreateMachineUserRequest(machine_user=user), metadata=api.metadata(ADMIN)
    )

    answer = await api.check(created.machine_user.machine_user_id, "github", "x")

    assert (answer.allowed, answer.reason) == (allowed, reason)
    assert not answer.HasField("matched_rule")


async def test_an_update_changes_the_next_decision(api: Api) -> None:
    machine_user_id = await _checked(api, "edited")
    assert (await api.check(machine_user_id, "shell", "run")).allowed is False

    await api.update(
        machineusers_pb2.MachineUser(
            machine_user_id=machine_user_id,
            permissions=users_pb2.Permissions(
                rules=[users_pb2.PermissionRule(effect=ALLOW, pattern="shell/run")]
            ),
        ),
        ("permissions",),
    )

    answer = await api.check(machine_user_id, "shell", "run")
    assert (answer.allowed, answer.matched_rule.index) == (True, 0)


SELF = "the machine user itself"


@pytest.mark.parametrize(
    ("by", "code", "reason"),
    [
        pytest.param(ADMIN, None, "", id="admin"),
        pytest.param(SERVICE, None, "", id="mesh-service"),
        pytest.param(SELF, None, "", id="self"),
        pytest.param(None, grpc.StatusCode.UNAUTHENTICATED, "AUTHENTICATION_REQUIRED", id="anon"),
        pytest.param(
            Identity(PrincipalKind.MACHINE, "another-machine-user"),
            grpc.StatusCode.PERMISSION_DENIED,
            "NOT_SELF",
            id="other-machine",
        ),
        pytest.param(ALICE, grpc.StatusCode.PERMISSION_DENIED, "NOT_SELF", id="person"),
    ],
)
async def test_admins_check_anyone_others_only_themselves(
    api: Api, by: Identity | str | None, code: grpc.StatusCode | None, reason: str
) -> None:
    target = await _checked(api, "asked-about")
    caller = Identity(PrincipalKind.MACHINE, target) if by == SELF else by
    assert not isinstance(caller, str)

    if code is None:
        assert (await api.check(target, "github", "create_issue", by=caller)).allowed
        return
    refused = await failure(api.check(target, "github", "create_issue", by=caller))
    assert (refused.code, refused.reason) == (code, reason)


async def test_a_person_with_the_machine_users_id_is_not_it(api: Api) -> None:
    """A person whose subject happens to equal the id is someone else."""
    target = await _checked(api, "namesake")

    refused = await failure(
        api.check(target, "github", "x", by=Identity(PrincipalKind.USER, target))
    )

    assert (refused.code, refused.reason) == (grpc.StatusCode.PERMISSION_DENIED, "NOT_SELF")


async def test_a_non_admin_learns_nothing_about_a_missing_machine_user(api: Api) -> None:
    refused = await failure(api.check("no-such-id", "github", "x", by=ALICE))
    missing = await failure(api.check("no-such-id", "github", "x"))

    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    assert missing.code == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(
    ("machine_user_id", "server", "tool", "field"),
    [
        pytest.param("", "github", "x", "machine_user_id", id="no-id"),
        pytest.param("a/b", "github", "x", "machine_user_id", id="bad-id"),
        pytest.param("some-id", "", "x", "server", id="no-server"),
        pytest.param("some-id", "github", "", "tool", id="no-tool"),
    ],
)
async def test_missing_fields_are_refused_naming_them(
    api: Api, machine_user_id: str, server: str, tool: str, field: str
) -> None:
    refused = await failure(api.check(machine_user_id, server, tool))

    assert (refused.code, refused.metadata["field"]) == (grpc.StatusCode.INVALID_ARGUMENT, field)
