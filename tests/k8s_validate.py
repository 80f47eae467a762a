"""Validate a baked project's Kubernetes manifests offline.

`validate_manifests(directory)` returns a list of readable problems (empty: all valid):

- every YAML document of every `*.yaml` under `directory` (except `kustomization.yaml`)
  against the Kubernetes JSON schemas that kubernetes-validate ships, in strict mode
  (unknown fields are errors), for each version in `KUBERNETES_VERSIONS`;
- every resource listed in `kustomization.yaml` exists;
- a few references the schemas cannot see: a Deployment's selector matches its pod
  labels, a Service, PodDisruptionBudget or HorizontalPodAutoscaler finds its pods or
  Deployment, and ConfigMaps, Secrets and PersistentVolumeClaims that pods refer to are
  defined in the directory.

Also a command: `python tests/k8s_validate.py DIRECTORY` prints the problems, exit 1 if any.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate.utils import VersionNotSupportedError

# The oldest Kubernetes the manifests promise to work on (fields newer than it are
# errors) and the newest whose schemas kubernetes-validate ships.
OLDEST_SUPPORTED = "1.30"
KUBERNETES_VERSIONS: tuple[str, ...] = (OLDEST_SUPPORTED, kubernetes_validate.latest_version())

KUSTOMIZATION = "kustomization.yaml"

Manifest = dict[str, Any]


def validate_manifests(
    directory: Path, versions: tuple[str, ...] = KUBERNETES_VERSIONS
) -> list[str]:
    errors: list[str] = []
    manifests: list[tuple[str, Manifest]] = []
    for path in sorted(directory.rglob("*.yaml")):
        if path.name == KUSTOMIZATION:
            continue
        name = str(path.relative_to(directory))
        documents, problem = _load(path)
        if problem:
            errors.append(f"{name}: {problem}")
            continue
        if not documents:
            errors.append(f"{name}: no Kubernetes object in the file")
        for index, document in enumerate(documents):
            where = name if len(documents) == 1 else f"{name} (document {index + 1})"
            if not isinstance(document, dict) or not {"apiVersion", "kind"} <= document.keys():
                errors.append(f"{where}: not a Kubernetes object (no apiVersion and kind)")
                continue
            manifests.append((where, document))
            errors.extend(f"{where}: {problem}" for problem in _schema_errors(document, versions))
    errors.extend(_kustomization_errors(directory))
    errors.extend(_reference_errors(manifests))
    return errors


def _load(path: Path) -> tuple[list[Any], str | None]:
    try:
        documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
    except yaml.YAMLError as exc:
        return [], f"invalid YAML: {exc}"
    return [document for document in documents if document is not None], None


def _schema_errors(document: Manifest, versions: tuple[str, ...]) -> list[str]:
    kind = document["kind"]
    errors = []
    for version in versions:
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            field = ".".join(str(part) for part in exc.path) or "(top level)"
            errors.append(f"{kind} invalid for Kubernetes {exc.version}: {field}: {exc.message}")
        except (kubernetes_validate.SchemaNotFoundError, VersionNotSupportedError) as exc:
            errors.append(f"{kind}: {exc.message}")
        except kubernetes_validate.InvalidSchemaError as exc:
            errors.append(f"{kind}: schema problem: {exc.message}")
    return errors


def _kustomization_errors(directory: Path) -> list[str]:
    path = directory / KUSTOMIZATION
    if not path.exists():
        return [f"{KUSTOMIZATION}: missing"]
    documents, problem = _load(path)
    if problem:
        return [f"{KUSTOMIZATION}: {problem}"]
    if len(documents) != 1 or not isinstance(documents[0], dict):
        return [f"{KUSTOMIZATION}: expected one mapping"]
    kustomization = documents[0]
    errors = []
    if kustomization.get("kind") != "Kustomization":
        errors.append(f"{KUSTOMIZATION}: kind is {kustomization.get('kind')!r}, not Kustomization")
    resources = kustomization.get("resources") or []
    if not isinstance(resources, list) or not resources:
        return [*errors, f"{KUSTOMIZATION}: no resources listed"]
    for resource in resources:
        if not isinstance(resource, str) or not (directory / resource).exists():
            errors.append(f"{KUSTOMIZATION}: lists {resource!r}, which does not exist")
    if len(set(map(str, resources))) != len(resources):
        errors.append(f"{KUSTOMIZATION}: a resource is listed twice")
    return errors


def _names(manifests: list[tuple[str, Manifest]], kind: str) -> set[str]:
    return {m.get("metadata", {}).get("name", "") for _, m in manifests if m["kind"] == kind}


def _pod_templates(manifests: list[tuple[str, Manifest]]) -> list[tuple[str, Manifest, Manifest]]:
    """(where, workload, pod template) for every Deployment and Job."""
    templates = []
    for where, manifest in manifests:
        if manifest["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            template = manifest.get("spec", {}).get("template", {})
            templates.append((where, manifest, template))
    return templates


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _reference_errors(manifests: list[tuple[str, Manifest]]) -> list[str]:
    errors = []
    templates = _pod_templates(manifests)
    pod_labels = [t.get("metadata", {}).get("labels", {}) for _, _, t in templates]
    defined = {
        kind: _names(manifests, kind) for kind in ("ConfigMap", "Secret", "PersistentVolumeClaim")
    }

    for where, workload, template in templates:
        labels = template.get("metadata", {}).get("labels", {})
        selector = workload.get("spec", {}).get("selector", {}).get("matchLabels")
        if workload["kind"] != "Job" and not _matches(selector or {}, labels):
            errors.append(f"{where}: selector {selector} does not match the pod labels {labels}")
        spec = template.get("spec", {})
        for container in spec.get("initContainers", []) + spec.get("containers", []):
            for source in container.get("envFrom", []):
                for key, kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(key)
                    if ref and not ref.get("optional") and ref.get("name") not in defined[kind]:
                        errors.append(
                            f"{where}: refers to {kind} {ref.get('name')!r}, not defined here"
                        )
        for volume in spec.get("volumes", []):
            claim = volume.get("persistentVolumeClaim", {}).get("claimName")
            if claim and claim not in defined["PersistentVolumeClaim"]:
                errors.append(f"{where}: mounts PersistentVolumeClaim {claim!r}, not defined here")

    for where, manifest in manifests:
        spec = manifest.get("spec", {})
        if manifest["kind"] == "Service":
            selector = spec.get("selector") or {}
            if not any(_matches(selector, labels) for labels in pod_labels):
                errors.append(f"{where}: selector {selector} matches no pod template")
        elif manifest["kind"] == "PodDisruptionBudget":
            selector = spec.get("selector", {}).get("matchLabels") or {}
            if not any(_matches(selector, labels) for labels in pod_labels):
                errors.append(f"{where}: selector {selector} matches no pod template")
        elif manifest["kind"] == "HorizontalPodAutoscaler":
            target = spec.get("scaleTargetRef", {})
            if target.get("name") not in _names(manifests, target.get("kind", "")):
                errors.append(
                    f"{where}: scales {target.get('kind')} {target.get('name')!r}, not defined here"
                )
    return errors


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tests/k8s_validate.py DIRECTORY", file=sys.stderr)
        return 2
    errors = validate_manifests(Path(argv[0]))
    for error in errors:
        print(error)
    print(
        f"{len(errors)} problem(s); Kubernetes {', '.join(KUBERNETES_VERSIONS)}, "
        f"kubernetes-validate {kubernetes_validate.__version__}"
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
