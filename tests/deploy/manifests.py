"""Reading deploy/: the kustomize base's objects as kustomize would emit them (less the name
hash of generated ConfigMaps), and the Prometheus rules and Grafana dashboard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
RULES = DEPLOY / "prometheus" / "embedworker-rules.yml"
RULE_TESTS = DEPLOY / "prometheus" / "embedworker-rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "embedworker-dashboard.json"

Manifest = dict[str, Any]


def load_yaml_documents(path: Path) -> list[Manifest]:
    with path.open(encoding="utf-8") as stream:
        return [doc for doc in yaml.safe_load_all(stream) if doc is not None]


def kustomization() -> Manifest:
    (doc,) = load_yaml_documents(KUBERNETES / "kustomization.yaml")
    return doc


def generated_config_maps() -> list[Manifest]:
    """The configMapGenerator's ConfigMaps, named without kustomize's hash suffix."""
    maps = []
    for generator in kustomization().get("configMapGenerator", []):
        data = {
            Path(name).name: (KUBERNETES / name).read_text(encoding="utf-8")
            for name in generator.get("files", [])
        }
        labels = generator.get("options", {}).get("labels", {})
        maps.append({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": generator["name"], "labels": labels}, "data": data,
        })
    return maps


def base_objects() -> list[Manifest]:
    """Every object of the base: its resources' documents and the generated ConfigMaps."""
    objects = []
    for resource in kustomization()["resources"]:
        objects.extend(load_yaml_documents(KUBERNETES / resource))
    return objects + generated_config_maps()


def one(objects: list[Manifest], kind: str) -> Manifest:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def rule_groups() -> list[Manifest]:
    (doc,) = load_yaml_documents(RULES)
    groups: list[Manifest] = doc["groups"]
    return groups


def dashboard() -> Manifest:
    loaded: Manifest = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded
