"""Queries over registered services: lookup by name, event routing, dependency checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from registry.model import Dependency, DependencyCheck, Health, ServiceSpec, ServiceView
from registry.semver_range import InvalidRange, VersionRange


def find_service(specs: Iterable[ServiceSpec], name: str) -> ServiceSpec | None:
    """Find a service by short name, else by the full name of one of its gRPC services."""
    specs = list(specs)
    for spec in specs:
        if spec.name == name:
            return spec
    for spec in specs:
        if name in spec.grpc_services:
            return spec
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether a NATS-style ``pattern`` matches ``subject``.

    ``*`` matches exactly one dot-separated token and ``>`` (last) one or more tokens.
    """
    pattern_tokens = pattern.split(".")
    subject_tokens = subject.split(".")
    for index, token in enumerate(pattern_tokens):
        if token == ">":
            return index == len(pattern_tokens) - 1 and len(subject_tokens) > index
        if index >= len(subject_tokens):
            return False
        if token not in ("*", subject_tokens[index]):
            return False
    return len(pattern_tokens) == len(subject_tokens)


def event_services(specs: Iterable[ServiceSpec], event_type: str) -> tuple[list[str], list[str]]:
    """Return the sorted names of the services producing and consuming ``event_type``."""
    producers: list[str] = []
    consumers: list[str] = []
    for spec in specs:
        if event_type in spec.produces:
            producers.append(spec.name)
        if any(subject_matches(pattern, event_type) for pattern in spec.consumes):
            consumers.append(spec.name)
    return sorted(producers), sorted(consumers)


def check_dependencies(spec: ServiceSpec, services: Sequence[ServiceView]) -> list[DependencyCheck]:
    """Check each of ``spec``'s dependencies against the registered ``services``.

    A dependency is satisfied when a SERVING instance of the service providing its gRPC
    service runs a version in its range.
    """
    return [_check(dependency, services) for dependency in spec.dependencies]


def _check(dependency: Dependency, services: Sequence[ServiceView]) -> DependencyCheck:
    try:
        accepted = VersionRange.parse(dependency.version_range)
    except InvalidRange as exc:
        return DependencyCheck(dependency, False, "", f"invalid version range: {exc}")
    provider = next((s for s in services if dependency.service in s.spec.grpc_services), None)
    if provider is None:
        return DependencyCheck(dependency, False, "", f"no service serves {dependency.service}")
    found = provider.spec.version
    serving = [i for i in provider.instances if i.health is Health.SERVING]
    if not serving:
        return DependencyCheck(
            dependency, False, found, f"service {provider.name!r} has no serving instance"
        )
    versions = sorted({i.record.version or found for i in serving})
    if not any(accepted.contains(version) for version in versions):
        return DependencyCheck(
            dependency,
            False,
            found,
            f"no serving instance of {provider.name!r} has a version in "
            f"{dependency.version_range!r} (serving: {', '.join(versions) or 'no version'})",
        )
    return DependencyCheck(dependency, True, found, "")
