"""The Kubernetes validator finds what it promises to find (a validator that returned
nothing would pass every variant's manifests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.k8s_validate import validate_manifests

LABELS = {"app.kubernetes.io/name": "demo"}


def deployment(**spec_changes: Any) -> dict[str, Any]:
    container = {
        "name": "app",
        "image": "demo:1",
        "envFrom": [{"configMapRef": {"name": "demo"}}],
    }
    spec = {
        "selector": {"matchLabels": LABELS},
        "template": {"metadata": {"labels": LABELS}, "spec": {"containers": [container]}},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "demo"},
        "spec": spec | spec_changes,
    }


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "demo"},
    "spec": {"selector": LABELS, "ports": [{"port": 80, "targetPort": 8000}]},
}
CONFIG_MAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo"}}


def write(directory: Path, resources: dict[str, dict[str, Any]], listed: list[str]) -> Path:
    for name, manifest in resources.items():
        (directory / name).write_text(yaml.safe_dump(manifest))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": listed,
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return directory


def test_valid_manifests_have_no_problems(tmp_path: Path) -> None:
    resources = {"deployment.yaml": deployment(), "service.yaml": SERVICE}
    resources["configmap.yaml"] = CONFIG_MAP
    assert validate_manifests(write(tmp_path, resources, sorted(resources))) == []


def test_broken_manifests_are_each_reported(tmp_path: Path) -> None:
    broken = deployment(replicaz=2, selector={"matchLabels": {"app.kubernetes.io/name": "other"}})
    lonely_service = {**SERVICE, "spec": {**SERVICE["spec"], "selector": {"app": "nobody"}}}
    resources = {"deployment.yaml": broken, "service.yaml": lonely_service}
    errors = validate_manifests(write(tmp_path, resources, [*resources, "missing.yaml"]))
    expected = {
        "unknown field": "replicaz",
        "selector mismatch": "does not match the pod labels",
        "service selects nothing": "matches no pod template",
        "undefined ConfigMap": "refers to ConfigMap 'demo'",
        "missing resource": "lists 'missing.yaml'",
    }
    for problem, text in expected.items():
        assert any(text in error for error in errors), (problem, errors)


def test_a_file_that_is_not_a_kubernetes_object_is_reported(tmp_path: Path) -> None:
    (tmp_path / "notes.yaml").write_text("just: some yaml\n")
    write(tmp_path, {}, ["notes.yaml"])
    assert validate_manifests(tmp_path) == [
        "notes.yaml: not a Kubernetes object (no apiVersion and kind)"
    ]
