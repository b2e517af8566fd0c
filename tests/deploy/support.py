"""Loading helpers shared by the deploy/ validation tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMAS = Path(__file__).parent / "schemas"
# The Kubernetes release the manifests are written for (schemas bundled in kubernetes-validate, offline).
K8S_VERSION = "1.33.0"

_HCL = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


def parse_hcl(text: str) -> dict[str, Any]:
    return hcl2.loads(text, serialization_options=_HCL)


def load_hcl(path: Path) -> dict[str, Any]:
    return parse_hcl(path.read_text())


def yaml_documents(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    """Every Kubernetes object under deploy/k8s, with its file."""
    return [(path, doc) for path in sorted(K8S.rglob("*.yaml")) for doc in yaml_documents(path)]


def schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / f"{name}.json").read_text())
    return loaded


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(kind/name, pod spec) of every workload and pod template."""
    found = []
    for _, doc in manifests():
        kind, name = doc["kind"], doc.get("metadata", {}).get("name", "")
        if kind in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            found.append((f"{kind}/{name}", doc["spec"]["template"]["spec"]))
        elif kind == "PodTemplate":
            found.append((f"{kind}/{name}", doc["template"]["spec"]))
    return found
