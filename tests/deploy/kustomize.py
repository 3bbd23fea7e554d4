"""deploy/k8s rendered as ``kubectl apply -k`` would send it, without kubectl.

The kustomization uses only a plain ``resources`` list and a ``namespace``; :func:`render`
refuses any other field, so a patch or a generator added there fails the deploy tests
instead of being silently left out of what they check.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.deploy.files import K8S, load_documents, load_yaml

__all__ = ["CLUSTER_SCOPED", "UNDERSTOOD", "pod_templates", "render"]

#: The fields of a kustomization that :func:`render` applies.
UNDERSTOOD = frozenset({"apiVersion", "kind", "namespace", "resources"})

#: Kinds without a namespace, which kustomize's ``namespace`` leaves alone.
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})

#: Kinds that hold a pod template at ``spec.template``.
_WORKLOADS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"})


def render(directory: Path = K8S) -> list[dict[str, Any]]:
    """Every object the kustomization in ``directory`` applies, in its order.

    Raises:
        AssertionError: The kustomization uses a field this renderer does not apply, or
            names a resource that is not a file in ``directory``.
    """
    kustomization = load_yaml(directory / "kustomization.yaml")
    unknown = set(kustomization) - UNDERSTOOD
    assert not unknown, f"kustomization.yaml uses {sorted(unknown)}, which the tests ignore"
    namespace = kustomization.get("namespace")
    rendered = []
    for name in kustomization["resources"]:
        path = directory / name
        assert path.is_file(), f"kustomization.yaml names {name}, which is not a file"
        for document in load_documents(path):
            found = copy.deepcopy(document)
            if namespace and found["kind"] not in CLUSTER_SCOPED:
                found["metadata"]["namespace"] = namespace
            rendered.append(found)
    return rendered


def pod_templates(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The pod template of each workload (and each CronJob), by ``Kind/name``."""
    templates = {}
    for found in objects:
        kind, name = found["kind"], found["metadata"]["name"]
        if kind in _WORKLOADS:
            templates[f"{kind}/{name}"] = found["spec"]["template"]
        elif kind == "CronJob":
            templates[f"{kind}/{name}"] = found["spec"]["jobTemplate"]["spec"]["template"]
        elif kind == "Pod":
            templates[f"{kind}/{name}"] = {"metadata": found["metadata"], "spec": found["spec"]}
    return templates
