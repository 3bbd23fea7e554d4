"""Every pod of deploy/k8s meets each control of the "restricted" Pod Security Standard,
and the checker refuses a pod that breaks any one of them."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from tests.deploy.kustomize import pod_templates, render
from tests.deploy.pod_security import CONTROLS, Control, violations

TEMPLATES = pod_templates(render())
NAMESPACE = next(found for found in render() if found["kind"] == "Namespace")
control_ids = [f"{c.profile}: {c.name}" for c in CONTROLS]


def test_the_deployments_and_the_migration_job_are_checked() -> None:
    kinds = {name.partition("/")[0] for name in TEMPLATES}
    assert {"Deployment", "Job"} <= kinds
    assert "Job/migrate" in TEMPLATES


@pytest.mark.parametrize("control", CONTROLS, ids=control_ids)
@pytest.mark.parametrize("workload", sorted(TEMPLATES))
def test_each_pod_meets_the_control(workload: str, control: Control) -> None:
    assert control.check(TEMPLATES[workload]) == []


def test_the_namespace_enforces_the_restricted_standard() -> None:
    labels = NAMESPACE["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# A pod that meets every control; each case below breaks one.
COMPLIANT: dict[str, Any] = {
    "metadata": {"labels": {"app": "x"}},
    "spec": {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "app",
                "image": "x",
                "ports": [{"containerPort": 80}],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    },
}


def _pod(template: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = template["spec"]
    return spec


def _container(template: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = _pod(template)["containers"][0]
    return context


def _context(template: dict[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = _container(template)["securityContext"]
    return context


Breach = Callable[[dict[str, Any]], None]

# (control broken, how); every control of CONTROLS has one (checked below).
BREACHES: list[tuple[str, Breach]] = [
    (
        "baseline: HostProcess",
        lambda t: _context(t).update(windowsOptions={"hostProcess": True}),
    ),
    ("baseline: Host Namespaces", lambda t: _pod(t).update(hostNetwork=True)),
    ("baseline: Privileged Containers", lambda t: _context(t).update(privileged=True)),
    (
        "baseline: Capabilities",
        lambda t: _context(t).update(capabilities={"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
    ),
    (
        "baseline: HostPath Volumes",
        lambda t: _pod(t)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    ),
    ("baseline: Host Ports", lambda t: _container(t)["ports"][0].update(hostPort=80)),
    (
        "baseline: AppArmor",
        lambda t: _context(t).update(appArmorProfile={"type": "Unconfined"}),
    ),
    (
        "baseline: SELinux",
        lambda t: _context(t).update(seLinuxOptions={"type": "spc_t"}),
    ),
    ("baseline: /proc Mount Type", lambda t: _context(t).update(procMount="Unmasked")),
    (
        "baseline: Seccomp",
        lambda t: _context(t).update(seccompProfile={"type": "Unconfined"}),
    ),
    (
        "baseline: Sysctls",
        lambda t: _pod(t)["securityContext"].update(
            sysctls=[{"name": "kernel.msgmax", "value": "1"}]
        ),
    ),
    (
        "restricted: Volume Types",
        lambda t: _pod(t)["volumes"].append({"name": "nfs", "nfs": {"server": "x", "path": "/"}}),
    ),
    ("restricted: Privilege Escalation", lambda t: _context(t).pop("allowPrivilegeEscalation")),
    ("restricted: Running as Non-root", lambda t: _pod(t)["securityContext"].pop("runAsNonRoot")),
    ("restricted: Running as Non-root user", lambda t: _context(t).update(runAsUser=0)),
    ("restricted: Seccomp", lambda t: _pod(t)["securityContext"].pop("seccompProfile")),
    ("restricted: Capabilities", lambda t: _context(t).update(capabilities={})),
]


def test_the_compliant_pod_meets_every_control() -> None:
    assert violations(COMPLIANT) == {}


def test_every_control_has_a_pod_that_breaks_it() -> None:
    assert sorted(name for name, _ in BREACHES) == sorted(control_ids)


@pytest.mark.parametrize(("control", "breach"), BREACHES, ids=[name for name, _ in BREACHES])
def test_the_checker_refuses_a_pod_that_breaks_the_control(control: str, breach: Breach) -> None:
    template = copy.deepcopy(COMPLIANT)
    breach(template)
    assert control in violations(template)
