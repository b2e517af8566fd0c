"""deploy/k8s: every manifest validates offline, and the security properties the issue names hold in the files.

Core kinds (Deployment, StatefulSet, Service, NetworkPolicy, RuntimeClass, PodTemplate, ...) validate strictly
against the Kubernetes OpenAPI schemas that kubernetes-validate bundles (K8S_VERSION, no network). Gatekeeper's CRD
kinds and the API server's config files (EncryptionConfiguration, audit Policy, kubeadm ClusterConfiguration) are
not API resources of that schema set: they validate against the small JSON schemas in tests/deploy/schemas/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from tests.deploy.support import DEPLOY, K8S, K8S_VERSION, manifests, pod_specs, schema, yaml_documents

CRD_GROUPS = ("templates.gatekeeper.sh/", "constraints.gatekeeper.sh/")
CLUSTER_CONFIG = {  # file -> schema: API server configuration, not applied with kubectl
    "encryption-config.yaml": "encryptionconfiguration",
    "audit-policy.yaml": "auditpolicy",
    "kubeadm-apiserver.yaml": "kubeadm-clusterconfiguration",
}
ALL = manifests()


def _id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.relative_to(K8S)}:{doc.get('kind')}/{doc.get('metadata', {}).get('name', '')}"


def _is_cluster_config(path: Path) -> bool:
    return path.parent.name == "cluster"


def _core(item: tuple[Path, dict[str, Any]]) -> bool:
    path, doc = item
    return not _is_cluster_config(path) and not doc["apiVersion"].startswith(CRD_GROUPS)


def test_kubernetes_validate_bundles_the_target_version() -> None:
    assert K8S_VERSION in kubernetes_validate.utils.all_versions()


@pytest.mark.parametrize("item", [m for m in ALL if _core(m)], ids=_id)
def test_core_manifest_validates_against_the_kubernetes_schema(item: tuple[Path, dict[str, Any]]) -> None:
    _, doc = item
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_manifests_cover_the_issue() -> None:
    kinds = {doc["kind"] for _, doc in ALL}
    assert {
        "Deployment",
        "StatefulSet",
        "RuntimeClass",
        "NetworkPolicy",
        "ConstraintTemplate",
        "EncryptionConfiguration",
        "Policy",
    } <= kinds


def test_kustomization_lists_every_resource_file_and_existing_config_files() -> None:
    kustomization = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {str(p.relative_to(DEPLOY)) for p in K8S.rglob("*.yaml") if not _is_cluster_config(p)}
    assert listed == on_disk
    for generator in kustomization["configMapGenerator"]:
        for file in generator["files"]:
            assert (DEPLOY / file).is_file(), file


# --- workloads -----------------------------------------------------------------------------------------------------


def _containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@pytest.mark.parametrize(("name", "spec"), pod_specs(), ids=[n for n, _ in pod_specs()])
def test_workload_is_non_root_read_only_unprivileged_limited_and_probed(name: str, spec: dict[str, Any]) -> None:
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert not any(spec.get(f) for f in ("hostNetwork", "hostPID", "hostIPC"))
    assert spec.get("automountServiceAccountToken") is False, "tokens are projected explicitly where needed"
    for c in _containers(spec):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc.get("runAsUser", pod["runAsUser"]) != 0, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False, c["name"]
        assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
        limits = c["resources"]["limits"]
        assert {"cpu", "memory"} <= set(limits), c["name"]
        image = c["image"]
        assert ":" in image and not image.endswith(":latest"), f"{c['name']}: image {image} is not pinned"
        if c.get("restartPolicy") == "Always":  # a native sidecar: started once its startup probe passes
            assert "startupProbe" in c, c["name"]
        elif c in spec.get("initContainers", []):  # a one-shot step: runs to completion (Kubernetes allows no probes)
            assert not {"readinessProbe", "livenessProbe", "startupProbe"} & set(c), c["name"]
        else:
            assert "readinessProbe" in c and "livenessProbe" in c, c["name"]


def test_lobstack_deployments_run_the_cli_entry_points() -> None:
    commands = {}
    for name, spec in pod_specs():
        for c in spec["containers"]:
            if c["image"].startswith("lobstack-provisioner:"):
                commands[name] = " ".join([*c.get("command", []), *c.get("args", [])])
    assert "lobstack worker" in commands["Deployment/lobstack-worker"]
    # The schema is upgraded before the worker starts (it refuses a database behind its code).
    (worker,) = [spec for name, spec in pod_specs() if name == "Deployment/lobstack-worker"]
    upgrade = [c for c in worker["initContainers"] if c.get("args") == ["db", "upgrade"]]
    assert len(upgrade) == 1 and upgrade[0]["envFrom"] == worker["containers"][0]["envFrom"]
    assert commands["Deployment/lobstack-gateway"].startswith("gateway")
    assert commands["Deployment/lobstack-codec-server"].startswith("codec-server")


def test_agents_run_under_gvisor() -> None:
    (runtime,) = [doc for _, doc in ALL if doc["kind"] == "RuntimeClass"]
    assert runtime["handler"] == "runsc"
    agents = [spec for name, spec in pod_specs() if name.startswith("PodTemplate/")]
    assert agents and all(spec["runtimeClassName"] == runtime["metadata"]["name"] for spec in agents)


# --- NetworkPolicies -----------------------------------------------------------------------------------------------


def _policies(namespace: str) -> list[dict[str, Any]]:
    return [doc for _, doc in ALL if doc["kind"] == "NetworkPolicy" and doc["metadata"]["namespace"] == namespace]


def _peer_ns(peer: dict[str, Any]) -> str | None:
    name = (peer.get("namespaceSelector") or {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
    return None if name is None else str(name)


@pytest.mark.parametrize("namespace", ["lobstack", "lobstack-agents", "vault"])
def test_every_namespace_denies_by_default(namespace: str) -> None:
    assert any(
        p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
        for p in _policies(namespace)
    )


def test_agents_reach_only_gateway_vault_and_dns_and_never_each_other() -> None:
    destinations = set()
    for policy in _policies("lobstack-agents"):
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), "an egress rule without peers would allow everything"
            for peer in rule["to"]:
                assert "ipBlock" not in peer
                labels = peer["podSelector"]["matchLabels"]
                destinations.add(
                    (_peer_ns(peer), tuple(sorted(labels.items())), tuple(p["port"] for p in rule["ports"]))
                )
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                assert _peer_ns(peer) == "lobstack", "only the worker's health probe may reach an agent"
                assert peer["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "lobstack-worker"}
    assert destinations == {
        ("lobstack", (("app.kubernetes.io/name", "lobstack-gateway"),), (8788,)),
        ("vault", (("app.kubernetes.io/name", "openbao"),), (8200,)),
        ("kube-system", (("k8s-app", "kube-dns"),), (53, 53)),
    }
    # No policy anywhere admits agent-to-agent traffic.
    for policy in _policies("lobstack-agents"):
        peers = [p for r in policy["spec"].get("egress", []) for p in r["to"]]
        peers += [p for r in policy["spec"].get("ingress", []) for p in r["from"]]
        assert all(_peer_ns(p) != "lobstack-agents" and "namespaceSelector" in p for p in peers)


# --- Gatekeeper (CRD kinds, checked against tests/deploy/schemas) ---------------------------------------------------


def _gatekeeper() -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    templates = {
        doc["spec"]["crd"]["spec"]["names"]["kind"]: doc for _, doc in ALL if doc["kind"] == "ConstraintTemplate"
    }
    constraints = [doc for _, doc in ALL if doc["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    return templates, constraints


def test_constraint_templates_are_well_formed() -> None:
    templates, _ = _gatekeeper()
    assert set(templates) == {
        "K8sLobstackNonRoot",
        "K8sLobstackRequireLimits",
        "K8sLobstackNoPrivileged",
        "K8sLobstackAgentRuntimeClass",
    }
    for kind, template in templates.items():
        jsonschema.validate(template, schema("constrainttemplate"))
        assert template["metadata"]["name"] == kind.lower(), "Gatekeeper requires name == lowercase kind"
        jsonschema.Draft7Validator.check_schema(template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"])
        rego = template["spec"]["targets"][0]["rego"]
        assert re.search(rf"^package {template['metadata']['name']}$", rego, re.M)
        assert 'violation[{"msg": msg}]' in rego
        assert rego.count("{") == rego.count("}") and rego.count("(") == rego.count(")")
        declared = set(template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"].get("properties", {}))
        assert set(re.findall(r"input\.parameters\.(\w+)", rego)) <= declared, kind


def test_constraints_match_their_templates_and_cover_the_issue() -> None:
    templates, constraints = _gatekeeper()
    by_kind = {}
    for constraint in constraints:
        jsonschema.validate(constraint, schema("constraint"))
        template = templates[constraint["kind"]]
        parameters = constraint["spec"].get("parameters", {})
        jsonschema.validate(parameters, template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"])
        assert constraint["spec"]["enforcementAction"] == "deny"
        by_kind[constraint["kind"]] = constraint
    assert set(by_kind) == set(templates)
    for kind in ("K8sLobstackNonRoot", "K8sLobstackRequireLimits", "K8sLobstackNoPrivileged"):
        assert {"lobstack", "lobstack-agents", "vault"} <= set(by_kind[kind]["spec"]["match"]["namespaces"])
    runtime = by_kind["K8sLobstackAgentRuntimeClass"]
    assert runtime["spec"]["match"]["namespaces"] == ["lobstack-agents"]
    assert runtime["spec"]["parameters"]["runtimeClassNames"] == ["gvisor"]
    assert {"cpu", "memory"} <= set(by_kind["K8sLobstackRequireLimits"]["spec"]["parameters"]["resources"])


# --- API server configuration ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("file", "schema_name"), CLUSTER_CONFIG.items())
def test_cluster_config_validates(file: str, schema_name: str) -> None:
    (doc,) = yaml_documents(K8S / "cluster" / file)
    jsonschema.validate(doc, schema(schema_name))


def test_secrets_are_encrypted_at_rest() -> None:
    (doc,) = yaml_documents(K8S / "cluster" / "encryption-config.yaml")
    (entry,) = [r for r in doc["resources"] if "secrets" in r["resources"]]
    first = entry["providers"][0]
    assert set(first) & {"kms", "aescbc", "aesgcm", "secretbox"}, "the first provider encrypts new writes"
    if "kms" in first:
        assert first["kms"]["apiVersion"] == "v2"


def test_audit_policy_records_secret_access_rbac_changes_and_exec_without_secret_values() -> None:
    (doc,) = yaml_documents(K8S / "cluster" / "audit-policy.yaml")

    def level_for(group: str, resource: str, verb: str = "get") -> str:
        for rule in doc["rules"]:  # first match wins, as in the API server
            if rule.get("verbs") and verb not in rule["verbs"]:
                continue
            if "nonResourceURLs" in rule or "users" in rule:
                continue
            res = rule.get("resources")
            if res is None or any(
                r.get("group", "") == group and (not r.get("resources") or resource in r["resources"]) for r in res
            ):
                return str(rule["level"])
        return "None"

    assert level_for("", "secrets") == "Metadata"  # recorded, and never the value
    assert level_for("", "secrets", "update") == "Metadata"
    for resource in ("roles", "rolebindings", "clusterroles", "clusterrolebindings"):
        assert level_for("rbac.authorization.k8s.io", resource, "create") == "RequestResponse"
    for sub in ("pods/exec", "pods/attach"):
        assert level_for("", sub, "create") == "RequestResponse"
    assert doc["rules"][-1] == {"level": "Metadata"}, "everything else is recorded at least as metadata"


def test_api_server_keeps_two_years_of_audit_log() -> None:
    (doc,) = yaml_documents(K8S / "cluster" / "kubeadm-apiserver.yaml")
    args = {a["name"]: a["value"] for a in doc["apiServer"]["extraArgs"]}
    assert int(args["audit-log-maxage"]) >= 730
    assert args["audit-policy-file"].endswith("/audit-policy.yaml")
    assert args["encryption-provider-config"].endswith("/encryption-config.yaml")
    mounted = {v["mountPath"] for v in doc["apiServer"]["extraVolumes"]}
    assert str(Path(args["audit-log-path"]).parent) in mounted
