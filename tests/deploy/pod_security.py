"""The "restricted" Pod Security Standard, one check per control, for pod templates.

The controls are those the Kubernetes documentation lists (Concepts → Security → Pod
Security Standards): the Baseline profile's, which Restricted includes, then Restricted's
own, each under the name the documentation gives it. Each check takes a pod template
(``metadata`` and ``spec``) and returns what breaks its control, one line per field, so
an empty list means the control is met. The documentation's exemptions for Windows pods
(``spec.os.name: windows``) are not applied: every plugmesh pod runs on Linux.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CONTROLS", "Control", "violations"]

Template = Mapping[str, Any]

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# The capabilities Baseline lets a container add (the container runtimes' default set).
_BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
_SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_CONFINED = frozenset({"RuntimeDefault", "Localhost"})


@dataclass(frozen=True)
class Control:
    """One control of the standard: its documented name, profile and check."""

    name: str
    profile: str
    check: Callable[[Template], list[str]]


def _spec(template: Template) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = template.get("spec") or {}
    return spec


def _pod_context(template: Template) -> Mapping[str, Any]:
    context: Mapping[str, Any] = _spec(template).get("securityContext") or {}
    return context


def _containers(template: Template) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each container as ``where`` (``containers[name]``) and its security context."""
    for field in _CONTAINER_LISTS:
        for container in _spec(template).get(field) or []:
            yield f"{field}[{container.get('name')}]", container.get("securityContext") or {}


def _contexts(template: Template) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The pod's security context, then each container's."""
    yield "securityContext", _pod_context(template)
    yield from _containers(template)


def host_process(template: Template) -> list[str]:
    return [
        f"{where}.windowsOptions.hostProcess is true"
        for where, context in _contexts(template)
        if (context.get("windowsOptions") or {}).get("hostProcess") is True
    ]


def host_namespaces(template: Template) -> list[str]:
    spec = _spec(template)
    return [
        f"{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)
    ]


def privileged_containers(template: Template) -> list[str]:
    return [f"{w}.privileged is true" for w, c in _containers(template) if c.get("privileged")]


def baseline_capabilities(template: Template) -> list[str]:
    return [
        f"{where} adds {capability}"
        for where, context in _containers(template)
        for capability in (context.get("capabilities") or {}).get("add") or []
        if capability not in _BASELINE_CAPABILITIES
    ]


def host_path_volumes(template: Template) -> list[str]:
    return [
        f"volume {volume.get('name')} is a hostPath"
        for volume in _spec(template).get("volumes") or []
        if "hostPath" in volume
    ]


def host_ports(template: Template) -> list[str]:
    return [
        f"{field}[{container.get('name')}] uses hostPort {port['hostPort']}"
        for field in _CONTAINER_LISTS
        for container in _spec(template).get(field) or []
        for port in container.get("ports") or []
        if port.get("hostPort")
    ]


def app_armor(template: Template) -> list[str]:
    found = [
        f"{where}.appArmorProfile.type is {profile['type']}"
        for where, context in _contexts(template)
        if (profile := context.get("appArmorProfile")) and profile.get("type") not in _CONFINED
    ]
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        allowed = value == "runtime/default" or str(value).startswith("localhost/")
        if key.startswith(_APPARMOR_ANNOTATION) and not allowed:
            found.append(f"annotation {key} is {value}")
    return found


def se_linux(template: Template) -> list[str]:
    found = []
    for where, context in _contexts(template):
        options = context.get("seLinuxOptions") or {}
        if options.get("type", "") not in _SELINUX_TYPES:
            found.append(f"{where}.seLinuxOptions.type is {options['type']}")
        found += [
            f"{where}.seLinuxOptions.{key} is set" for key in ("user", "role") if options.get(key)
        ]
    return found


def proc_mount_type(template: Template) -> list[str]:
    return [
        f"{where}.procMount is {context['procMount']}"
        for where, context in _containers(template)
        if context.get("procMount", "Default") != "Default"
    ]


def baseline_seccomp(template: Template) -> list[str]:
    return [
        f"{where}.seccompProfile.type is Unconfined"
        for where, context in _contexts(template)
        if (context.get("seccompProfile") or {}).get("type") == "Unconfined"
    ]


def sysctls(template: Template) -> list[str]:
    return [
        f"sysctl {sysctl.get('name')} is not a safe one"
        for sysctl in _pod_context(template).get("sysctls") or []
        if sysctl.get("name") not in _SAFE_SYSCTLS
    ]


def volume_types(template: Template) -> list[str]:
    found = []
    for volume in _spec(template).get("volumes") or []:
        for source in set(volume) - {"name"} - _VOLUME_SOURCES:
            found.append(f"volume {volume.get('name')} is a {source}")
    return found


def privilege_escalation(template: Template) -> list[str]:
    return [
        f"{where}.allowPrivilegeEscalation is not false"
        for where, context in _containers(template)
        if context.get("allowPrivilegeEscalation") is not False
    ]


def running_as_non_root(template: Template) -> list[str]:
    pod = _pod_context(template).get("runAsNonRoot")
    found = ["securityContext.runAsNonRoot is false"] if pod is False else []
    for where, context in _containers(template):
        mine = context.get("runAsNonRoot")
        if mine is False or (mine is None and pod is not True):
            found.append(f"{where} may run as root (runAsNonRoot is not true)")
    return found


def running_as_non_root_user(template: Template) -> list[str]:
    return [f"{w}.runAsUser is 0" for w, c in _contexts(template) if c.get("runAsUser") == 0]


def restricted_seccomp(template: Template) -> list[str]:
    pod = (_pod_context(template).get("seccompProfile") or {}).get("type")
    found = [] if pod in _CONFINED or pod is None else [f"securityContext.seccompProfile is {pod}"]
    for where, context in _containers(template):
        mine = (context.get("seccompProfile") or {}).get("type")
        if (mine or pod) not in _CONFINED:
            found.append(f"{where} runs without RuntimeDefault or Localhost seccomp ({mine})")
    return found


def restricted_capabilities(template: Template) -> list[str]:
    found = []
    for where, context in _containers(template):
        capabilities = context.get("capabilities") or {}
        if "ALL" not in (capabilities.get("drop") or []):
            found.append(f"{where} does not drop ALL capabilities")
        found += [
            f"{where} adds {capability}"
            for capability in capabilities.get("add") or []
            if capability != "NET_BIND_SERVICE"
        ]
    return found


#: Every control of the restricted profile, Baseline's first.
CONTROLS: tuple[Control, ...] = (
    Control("HostProcess", "baseline", host_process),
    Control("Host Namespaces", "baseline", host_namespaces),
    Control("Privileged Containers", "baseline", privileged_containers),
    Control("Capabilities", "baseline", baseline_capabilities),
    Control("HostPath Volumes", "baseline", host_path_volumes),
    Control("Host Ports", "baseline", host_ports),
    Control("AppArmor", "baseline", app_armor),
    Control("SELinux", "baseline", se_linux),
    Control("/proc Mount Type", "baseline", proc_mount_type),
    Control("Seccomp", "baseline", baseline_seccomp),
    Control("Sysctls", "baseline", sysctls),
    Control("Volume Types", "restricted", volume_types),
    Control("Privilege Escalation", "restricted", privilege_escalation),
    Control("Running as Non-root", "restricted", running_as_non_root),
    Control("Running as Non-root user", "restricted", running_as_non_root_user),
    Control("Seccomp", "restricted", restricted_seccomp),
    Control("Capabilities", "restricted", restricted_capabilities),
)


def violations(template: Template) -> dict[str, list[str]]:
    """What breaks each control in ``template``, by ``profile: name``; only the broken."""
    found = {}
    for control in CONTROLS:
        if broken := control.check(template):
            found[f"{control.profile}: {control.name}"] = broken
    return found
