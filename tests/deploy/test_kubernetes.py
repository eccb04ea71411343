"""deploy/kubernetes, validated offline: every Kubernetes object against the schemas that
kubernetes-validate bundles (strict: no unknown fields), KEDA's objects against
tests/deploy/keda.schema.json (written from KEDA's documented spec), and the pieces against
each other and against the daemon (ports, probes, grace period, configuration, Secret keys).
The ScaledObject's query runs against a real database in tests/integration/test_scaling_query.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from embedworker.config import load_settings
from embedworker.ops.server import parse_listen
from embedworker.service import RELEASE_TIMEOUT_S
from tests.deploy.manifests import (
    KUBERNETES,
    Manifest,
    base_objects,
    kustomization,
    load_yaml_documents,
    one,
)
from tests.tools import require_tool

KEDA_SCHEMA = json.loads((Path(__file__).parent / "keda.schema.json").read_text())
KEDA_KINDS = ("ScaledObject", "TriggerAuthentication")
# The oldest Kubernetes the base is meant for, and the newest the validator knows.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Parameters KEDA's postgresql scaler takes from a TriggerAuthentication.
POSTGRESQL_AUTH_PARAMETERS = {"connection", "host", "port", "userName", "dbName", "sslmode",
                              "password"}
SECRET_EXAMPLE = KUBERNETES / "secret.example.yaml"


def keda_errors(obj: Manifest) -> list[str]:
    schema = {"$defs": KEDA_SCHEMA["$defs"], "$ref": f"#/$defs/{obj['kind']}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(obj)]


def kubernetes_errors(obj: Manifest, version: str) -> list[str]:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [str(exc)]
    return []


def validate_all(objects: list[Manifest], version: str) -> None:
    problems = {}
    for obj in objects:
        errors = keda_errors(obj) if obj["kind"] in KEDA_KINDS else kubernetes_errors(obj, version)
        if errors:
            problems[f"{obj['kind']}/{obj['metadata']['name']}"] = errors
    assert problems == {}


def container(workload: Manifest) -> Manifest:
    (found,) = workload["spec"]["template"]["spec"]["containers"]
    return found


def env_of(workload: Manifest) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container(workload).get("env", [])}


def secret_example() -> Manifest:
    (secret,) = load_yaml_documents(SECRET_EXAMPLE)
    return secret


# -- every object is valid -------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_of_the_base_is_valid(version: str) -> None:
    objects = base_objects()
    assert {obj["kind"] for obj in objects} == {
        "ServiceAccount", "ConfigMap", "Job", "Deployment", "Service", "PodDisruptionBudget",
        "TriggerAuthentication", "ScaledObject",
    }
    validate_all([*objects, secret_example()], version)


def test_the_validators_catch_mistakes() -> None:
    """The checks above can fail: an unknown field, a wrong type, a missing query."""
    version = KUBERNETES_VERSIONS[-1]
    deployment = copy.deepcopy(one(base_objects(), "Deployment"))
    container(deployment)["livenessProbes"] = container(deployment).pop("livenessProbe")
    assert kubernetes_errors(deployment, version)
    deployment = copy.deepcopy(one(base_objects(), "Deployment"))
    container(deployment)["ports"][0]["containerPort"] = "9464"
    assert kubernetes_errors(deployment, version)

    scaled = one(base_objects(), "ScaledObject")
    for path, value in [
        (("spec", "minReplicas"), 1),
        (("spec", "triggers", 0, "metadata", "targetQueryValue"), 1000),
        (("spec", "triggers", 0, "metadata", "targetValue"), "1000"),
        (("spec", "triggers", 0, "authenticationRef", "kind"), "Secret"),
    ]:
        broken = copy.deepcopy(scaled)
        _set(broken, path, value)
        assert keda_errors(broken), path
    broken = copy.deepcopy(scaled)
    del broken["spec"]["triggers"][0]["metadata"]["query"]
    assert keda_errors(broken)
    auth = copy.deepcopy(one(base_objects(), "TriggerAuthentication"))
    auth["spec"]["secretTargetRef"][0].pop("key")
    assert keda_errors(auth)


def test_the_keda_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(KEDA_SCHEMA)


def test_the_kustomization_renders_to_valid_objects() -> None:
    """What `kubectl apply -k` would send: kustomize's own output (hashed ConfigMap name,
    image set), validated the same way."""
    kubectl = require_tool("kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60,
        check=True,
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(rendered) if doc]
    validate_all(objects, KUBERNETES_VERSIONS[-1])

    config_map = one(objects, "ConfigMap")
    assert config_map["metadata"]["name"].startswith("embedworker-config-")
    for workload in (one(objects, "Deployment"), one(objects, "Job")):
        volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == config_map["metadata"]["name"]
        assert container(workload)["image"] == "embedworker:0.1.0"


# -- the pieces fit each other and the daemon ------------------------------------------------


def test_the_deployment_leaves_the_count_to_the_autoscaler() -> None:
    objects = base_objects()
    deployment = one(objects, "Deployment")
    assert "replicas" not in deployment["spec"]
    scaled = one(objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert scaled["spec"]["scaleTargetRef"].get("kind", "Deployment") == "Deployment"
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]


def test_the_configuration_is_valid_with_the_deployments_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The ConfigMap's TOML, the Deployment's variables and the example Secret's keys make a
    configuration the daemon accepts (an unknown EMBEDWORKER_* key would be exit 78)."""
    objects = base_objects()
    deployment = one(objects, "Deployment")
    config_map = one(objects, "ConfigMap")
    env = env_of(deployment)
    mount_dir = Path(env["EMBEDWORKER_CONFIG"]).parent
    mounts = {m["name"]: m for m in container(deployment)["volumeMounts"]}
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    config_volume = next(name for name, m in mounts.items() if Path(m["mountPath"]) == mount_dir)
    assert volumes[config_volume]["configMap"]["name"] == config_map["metadata"]["name"]

    file_name = Path(env["EMBEDWORKER_CONFIG"]).name
    config_file = tmp_path / file_name
    config_file.write_text(config_map["data"][file_name])
    for name, value in {**env, **secret_example()["stringData"]}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("EMBEDWORKER_CONFIG", str(config_file))
    settings = load_settings()

    assert settings.http_listen is not None
    _, port = parse_listen(settings.http_listen)
    (container_port,) = container(deployment)["ports"]
    assert container_port["containerPort"] == port
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > settings.shutdown_grace_s + RELEASE_TIMEOUT_S
    assert set(settings.enabled_models) == {"e5_small", "bge_m3"}
    assert all(model.api_key is not None and model.api_key.get_secret_value() == "change-me"
               for model in settings.enabled_models.values())


def test_the_probes_use_the_observability_endpoint() -> None:
    main = container(one(base_objects(), "Deployment"))
    port_name = main["ports"][0]["name"]
    probes = {kind: main[kind]["httpGet"] for kind in
              ("startupProbe", "livenessProbe", "readinessProbe")}
    assert {kind: (get["path"], get["port"]) for kind, get in probes.items()} == {
        "startupProbe": ("/healthz", port_name),
        "livenessProbe": ("/healthz", port_name),
        "readinessProbe": ("/readyz", port_name),
    }


@pytest.mark.parametrize("kind", ["Deployment", "Job"])
def test_the_pods_are_locked_down(kind: str) -> None:
    workload = one(base_objects(), kind)
    pod = workload["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    security = container(workload)["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container(workload)["resources"]
    assert set(resources["requests"]) == set(resources["limits"]) == {"cpu", "memory"}
    assert [e["secretRef"]["name"] for e in container(workload)["envFrom"]] == [
        secret_example()["metadata"]["name"]
    ]


def test_selectors_find_the_daemons_pods() -> None:
    objects = base_objects()
    deployment = one(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selectors = {
        "Deployment": deployment["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget": one(objects, "PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"],
        "Service": one(objects, "Service")["spec"]["selector"],
    }
    for kind, selector in selectors.items():
        assert selector.items() <= pod_labels.items(), kind
    job_labels = one(objects, "Job")["spec"]["template"]["metadata"]["labels"]
    assert not selectors["Service"].items() <= job_labels.items()
    service_port = one(objects, "Service")["spec"]["ports"][0]
    assert service_port["targetPort"] == container(deployment)["ports"][0]["name"]


def test_keda_reads_the_daemons_database_url() -> None:
    objects = base_objects()
    auth = one(objects, "TriggerAuthentication")
    (trigger,) = one(objects, "ScaledObject")["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    secret = secret_example()
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["parameter"] in POSTGRESQL_AUTH_PARAMETERS
        assert ref["name"] == secret["metadata"]["name"]
        assert ref["key"] in secret["stringData"]
    assert {ref["parameter"]: ref["key"] for ref in auth["spec"]["secretTargetRef"]} == {
        "connection": "DATABASE_URL"
    }


def test_the_kustomization_lists_every_manifest() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {path.name for path in KUBERNETES.glob("*.yaml")}
    assert on_disk - listed == {"kustomization.yaml", "secret.example.yaml"}


def _set(obj: Any, path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        obj = obj[key]
    obj[path[-1]] = value
