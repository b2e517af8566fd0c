"""deploy/vault: every HCL file parses (python-hcl2), the agent policy template is what the code renders, the HA
server configuration is a 3-node Raft cluster with a file audit device on persistent storage, and the worker's
OpenBao agent and the operator bootstrap agree with the manifests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from activities.secrets.policy import render_agent_policy
from activities.secrets.settings import VaultSettings
from tests.deploy.support import DEPLOY, K8S, load_hcl, parse_hcl, yaml_documents

VAULT = DEPLOY / "vault"
HCL_FILES = sorted(VAULT.rglob("*.hcl"))
CAPABILITIES = {"create", "read", "update", "patch", "delete", "list", "sudo", "deny"}


@pytest.mark.parametrize("path", HCL_FILES, ids=lambda p: str(p.relative_to(VAULT)))
def test_hcl_parses(path: Path) -> None:
    assert load_hcl(path)


def _rules(path: Path) -> dict[str, list[str]]:
    return {p: body["capabilities"] for block in load_hcl(path)["path"] for p, body in block.items()}


@pytest.mark.parametrize("agent_id", ["a", "t-0123456789abcdef", "mailer-3b4798195ba8"])
def test_agent_policy_template_is_what_the_code_renders(agent_id: str) -> None:
    template = (VAULT / "policies" / "agent.hcl.tmpl").read_text()
    defaults = VaultSettings(addr="http://unused", token="")
    assert template.replace("{{agent_id}}", agent_id) == render_agent_policy(agent_id, defaults)
    assert parse_hcl(template.replace("{{agent_id}}", agent_id))["path"]


@pytest.mark.parametrize("name", ["orchestrator.hcl", "codec-server.hcl"])
def test_service_policies_are_scoped(name: str) -> None:
    rules = _rules(VAULT / "policies" / name)
    for path, caps in rules.items():
        assert set(caps) <= CAPABILITIES, path
        assert path not in {"*", "sys/*", "secret/*", "transit/*", "auth/*"}, f"{path}: far too broad"
        assert not path.startswith(("sys/policy/*", "sys/policies/", "sys/mounts/", "sys/auth/", "sys/audit")), path
        if "sudo" in caps:
            assert path == "auth/token/accessors", f"{path}: sudo only where the token accessor LIST needs it"


def _servers() -> dict[str, dict[str, Any]]:
    return {p.stem: load_hcl(p) for p in sorted((VAULT / "server").glob("openbao-*.hcl"))}


def test_ha_raft_cluster_of_three_nodes_that_join_each_other() -> None:
    servers = _servers()
    assert sorted(servers) == ["openbao-0", "openbao-1", "openbao-2"]
    for name, config in servers.items():
        (storage,) = config["storage"]
        raft = storage["raft"]
        assert raft["node_id"] == name
        others = {j["leader_api_addr"] for j in raft["retry_join"]}
        assert others == {f"https://{o}.openbao-internal.vault.svc:8200" for o in servers if o != name}
        assert config["api_addr"] == f"https://{name}.openbao-internal.vault.svc:8200"
        (listener,) = config["listener"]
        tcp = listener["tcp"]
        assert tcp.get("tls_disable") in (None, False) and tcp["tls_cert_file"] and tcp["tls_key_file"]


def _statefulset() -> dict[str, Any]:
    sts: dict[str, Any]
    (sts,) = [d for d in yaml_documents(K8S / "vault" / "openbao.yaml") if d["kind"] == "StatefulSet"]
    return sts


def test_audit_device_writes_to_a_retained_persistent_volume() -> None:
    sts = _statefulset()
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    claims = {c["metadata"]["name"]: c for c in sts["spec"]["volumeClaimTemplates"]}
    (storage_class,) = [d for d in yaml_documents(K8S / "vault" / "openbao.yaml") if d["kind"] == "StorageClass"]
    assert storage_class["reclaimPolicy"] == "Retain"
    assert claims["audit"]["spec"]["storageClassName"] == storage_class["metadata"]["name"]
    for config in _servers().values():
        (audit,) = config["audit"]
        device = audit["file"]
        ((_, body),) = device.items()
        (options,) = body["options"] if isinstance(body["options"], list) else [body["options"]]
        assert Path(options["file_path"]).parent == Path(mounts["audit"])
        assert "2 years" in body["description"]
        # Raft data on its own claim.
        assert config["storage"][0]["raft"]["path"] == mounts["data"] and "data" in claims


def test_statefulset_runs_each_node_with_its_own_config() -> None:
    sts = _statefulset()
    assert sts["spec"]["replicas"] == len(_servers()) == 3
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert "-config=/openbao/config/$(POD_NAME).hcl" in container["command"]
    assert sts["metadata"]["name"] + "-0" in _servers()


def test_worker_agent_logs_in_as_the_orchestrator_role_and_shares_the_token() -> None:
    agent = load_hcl(VAULT / "agent" / "worker.hcl")
    (auto_auth,) = agent["auto_auth"]
    (method,) = auto_auth["method"]
    config = method["kubernetes"]["config"]
    (sink,) = auto_auth["sink"]
    sink_path = Path(sink["file"]["config"]["path"])
    (deployment,) = [d for d in yaml_documents(K8S / "lobstack" / "worker.yaml") if d["kind"] == "Deployment"]
    spec = deployment["spec"]["template"]["spec"]
    (sidecar,) = [c for c in spec["initContainers"] if c["name"] == "bao-agent"]
    (worker,) = spec["containers"]
    sidecar_mounts = {m["mountPath"]: m["name"] for m in sidecar["volumeMounts"]}
    worker_mounts = {m["mountPath"]: m["name"] for m in worker["volumeMounts"]}
    assert sidecar_mounts[str(Path(config["token_path"]).parent)] == "vault-sa-token"
    assert sidecar_mounts[str(sink_path.parent)] == worker_mounts[str(sink_path.parent)] == "vault-token"
    assert str(sink_path) in " ".join(worker["command"])
    bootstrap = (VAULT / "bootstrap.sh").read_text()
    assert f"auth/kubernetes/role/{config['role']}" in bootstrap
    assert "token_policies=lobstack-orchestrator" in bootstrap
    (projected,) = [v for v in spec["volumes"] if v["name"] == "vault-sa-token"]
    assert f"audience={projected['projected']['sources'][0]['serviceAccountToken']['audience']}" in bootstrap


def test_bootstrap_mounts_the_engines_the_service_expects() -> None:
    bootstrap = (VAULT / "bootstrap.sh").read_text()
    defaults = VaultSettings(addr="http://unused", token="")
    assert f"secrets enable -path={defaults.kv_mount} -version=2 kv" in bootstrap
    assert f"secrets enable -path={defaults.transit_mount} transit" in bootstrap
    assert f"auth enable -path={defaults.approle_mount} approle" in bootstrap
    assert "auth enable -path=kubernetes kubernetes" in bootstrap
    assert 'policy write lobstack-orchestrator "$HERE/policies/orchestrator.hcl"' in bootstrap
