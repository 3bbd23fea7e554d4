"""Every object deploy/k8s applies is valid against the Kubernetes API's own schemas.

The schemas are the ones the kubernetes-validate package bundles (no network), in their
strict form: a field the API does not know, misspelt or misplaced, is an error, as
``kubectl apply`` makes it one. Each object is checked against the newest Kubernetes the
package knows and against the oldest that deploy/README.md supports.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import utils as kubernetes

from tests.deploy.kustomize import render

OBJECTS = render()
#: The oldest Kubernetes deploy/README.md supports (PodDisruptionBudget's
#: unhealthyPodEvictionPolicy is GA there).
OLDEST = "1.31"
NEWEST = kubernetes.latest_version()
VERSIONS = (OLDEST, NEWEST)
object_ids = [f"{o['kind']}/{o['metadata']['name']}" for o in OBJECTS]


def validate(found: dict[str, Any], version: str) -> str:
    """The version ``found`` was validated against; raises on an invalid object."""
    validated: str = kubernetes.validate(found, version, strict=True)
    return validated


def test_the_newest_schema_is_a_recent_kubernetes() -> None:
    major, minor = (int(part) for part in NEWEST.split(".")[:2])
    assert (major, minor) >= (1, 35), NEWEST


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("found", OBJECTS, ids=object_ids)
def test_each_object_is_valid(found: dict[str, Any], version: str) -> None:
    try:
        validated = validate(found, version)
    except kubernetes.SchemaNotFoundError as exc:
        pytest.fail(exc.message)
    except kubernetes.ValidationError as exc:
        path = ".".join(str(part) for part in exc.path)
        pytest.fail(f"{path}: {exc.message}")
    assert validated == ".".join(version.split(".")[:2])


def _deployment() -> dict[str, Any]:
    return copy.deepcopy(next(o for o in OBJECTS if o["kind"] == "Deployment"))


def _container(found: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = found["spec"]["template"]["spec"]["containers"][0]
    return container


def test_a_misspelt_field_is_refused() -> None:
    broken = _deployment()
    _container(broken)["livenesProbe"] = _container(broken).pop("livenessProbe")
    with pytest.raises(kubernetes.ValidationError, match="livenesProbe"):
        validate(broken, NEWEST)


def test_a_wrongly_typed_value_is_refused() -> None:
    broken = _deployment()
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes.ValidationError):
        validate(broken, NEWEST)


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(kubernetes.SchemaNotFoundError):
        validate({"apiVersion": "v1", "kind": "Deploymnet", "metadata": {"name": "x"}}, NEWEST)


def test_every_namespaced_object_lands_in_the_kustomizations_namespace() -> None:
    namespaces = {o["metadata"].get("namespace") for o in OBJECTS if o["kind"] != "Namespace"}
    assert namespaces == {"plugmesh"}


def test_the_renderer_refuses_a_kustomization_field_it_would_ignore(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: []\npatches: [{path: patch.yaml}]\n"
    )
    with pytest.raises(AssertionError, match="patches"):
        render(tmp_path)
