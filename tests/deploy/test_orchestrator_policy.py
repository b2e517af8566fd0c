"""deploy/vault/policies/orchestrator.hcl on a real OpenBao dev server: the operator step (deploy/vault/bootstrap.sh,
root token) installs it; a token holding only it gets exactly the capabilities the service needs
(sys/capabilities-self) and nothing that would let it escalate. Every test stack runs under such a token
(tests/stack.py), so the lifecycle, secrets, maintenance, gateway and codec suites prove the policy is sufficient."""

from __future__ import annotations

from collections.abc import Iterator

import hvac
import hvac.exceptions as hv
import pytest

from activities.errors import SecretsRejected
from activities.secrets import AgentVault, VaultSettings
from devstack import OpenBaoDev
from tests.deploy.support import DEPLOY
from tests.stack import Stack, orchestrator_token

POLICY = "lobstack-orchestrator"
A = "t-0123456789ab"  # any agent id
S = "pv0123456789ab"  # any pool slot
CRUD = {"create", "read", "update", "delete"}
NEEDED = {
    "sys/mounts": {"read"},
    "sys/auth": {"read"},
    "sys/policy": {"read"},
    f"sys/policy/agent-{A}": CRUD,
    f"sys/policy/lobstack-pool-{S}": CRUD,
    f"secret/data/agents/{A}/identity": {"create", "update"},
    "secret/metadata/agents/": {"read", "list", "update", "delete"},
    f"secret/metadata/agents/{A}/identity": {"read", "list", "update", "delete"},
    f"secret/data/pool/{S}/claim": {"create", "update"},
    "secret/metadata/pool/": {"read", "list", "delete"},
    f"secret/metadata/pool/{S}/claim": {"read", "list", "delete"},
    "secret/data/lobstack-webhooks/acme/wh-0123456789ab": {"create", "read", "update"},
    "secret/metadata/lobstack-webhooks/acme/wh-0123456789ab": {"delete"},
    "transit/keys": {"list"},
    f"transit/keys/agent-{A}": CRUD,
    f"transit/keys/agent-{A}/config": CRUD,
    f"transit/keys/agent-{A}/rotate": CRUD,
    f"transit/encrypt/agent-{A}": {"update"},
    f"transit/decrypt/agent-{A}": {"update"},
    f"transit/rewrap/agent-{A}": {"update"},
    "transit/decrypt/lobstack-codec": {"update"},
    "pki-agents/roles": {"list"},
    f"pki-agents/roles/agent-{A}": CRUD,
    "auth/approle/role": {"list"},
    f"auth/approle/role/agent-{A}": CRUD,
    f"auth/approle/role/agent-{A}/role-id": CRUD,
    f"auth/approle/role/agent-{A}/secret-id": CRUD,
    f"auth/approle/role/lobstack-pool-{S}": CRUD,
    f"auth/approle/role/lobstack-pool-{S}/role-id": CRUD,
    f"auth/approle/role/lobstack-pool-{S}/secret-id": CRUD,
    "auth/token/accessors": {"list", "sudo"},
    "auth/token/lookup-accessor": {"update"},
    "auth/token/revoke-accessor": {"update"},
    "auth/token/lookup-self": {"read"},
    "auth/token/renew-self": {"update"},
    "sys/capabilities-self": {"update"},
}
DENIED = [
    # its own, the operators' and the built-in policies: no self-escalation
    f"sys/policy/{POLICY}",
    "sys/policy/lobstack-codec-server",
    "sys/policy/root",
    "sys/policy/default",
    "sys/policies/acl/admin",
    # engines, auth methods, audit devices, seal and raw storage are the operator's
    "sys/mounts/secret",
    "sys/mounts/evil",
    "sys/mounts/transit/tune",
    "sys/auth/userpass",
    "sys/audit/file",
    "sys/seal",
    "sys/step-down",
    "sys/raw/core/keyring",
    "sys/rotate",
    "sys/generate-root/attempt",
    # no token minting, no other auth method's roles
    "auth/token/create",
    "auth/token/create-orphan",
    "auth/token/roles/any",
    "auth/approle/role/operator",
    "auth/approle/role/lobstack-orchestrator",
    "sys/policy/lobstack-poolish",
    "auth/kubernetes/role/lobstack-worker",
    "auth/kubernetes/config",
    "identity/entity",
    # other data: non-agent KV paths, the codec key itself, key export and backup
    "secret/data/platform/db",
    "secret/metadata/platform/db",
    "transit/keys/lobstack-codec",
    "transit/datakey/plaintext/lobstack-codec",
    "transit/encrypt/lobstack-codec",
    f"transit/export/encryption-key/agent-{A}",
    f"transit/backup/agent-{A}",
    # the agents' CA and certificates are Vault's and the agents': the service makes roles, never a certificate
    f"pki-agents/issue/agent-{A}",
    f"pki-agents/sign/agent-{A}",
    "pki-agents/sign-verbatim",
    "pki-agents/root/generate/internal",
    "pki-agents/root/sign-intermediate",
    "pki-agents/config/ca",
    "pki-agents/issuers/generate/root/internal",
    "pki-agents/roles/operator",
    "pki-agents/revoke",
    # issued without the default policy
    "cubbyhole/anything",
    "sys/wrapping/wrap",
]


@pytest.fixture(scope="module")
def orchestrator(openbao: OpenBaoDev) -> Iterator[hvac.Client]:
    client = hvac.Client(url=openbao.addr, token=orchestrator_token(openbao), timeout=5)
    yield client
    client.adapter.close()


@pytest.fixture(scope="module")
def root(openbao: OpenBaoDev) -> Iterator[hvac.Client]:
    client = hvac.Client(url=openbao.addr, token=openbao.root_token, timeout=5)
    yield client
    client.adapter.close()


def _capabilities(client: hvac.Client, paths: list[str]) -> dict[str, set[str]]:
    resp = client.adapter.post("/v1/sys/capabilities-self", json={"paths": paths})
    return {p: set(resp[p]) for p in paths}


def test_installed_policy_is_the_file_and_the_token_holds_only_it(orchestrator: hvac.Client, root: hvac.Client) -> None:
    text = (DEPLOY / "vault" / "policies" / "orchestrator.hcl").read_text()
    assert root.sys.read_policy(POLICY)["data"]["rules"] == text
    assert orchestrator.auth.token.lookup_self()["data"]["policies"] == [POLICY]


def test_token_has_exactly_the_capabilities_the_service_needs(orchestrator: hvac.Client) -> None:
    assert _capabilities(orchestrator, list(NEEDED)) == NEEDED


def test_everything_else_is_denied(orchestrator: hvac.Client) -> None:
    got = _capabilities(orchestrator, DENIED)
    assert {p: c for p, c in got.items() if c != {"deny"}} == {}


def test_escalation_attempts_fail_for_real(orchestrator: hvac.Client, root: hvac.Client) -> None:
    with pytest.raises(hv.Forbidden):
        orchestrator.sys.create_or_update_policy(POLICY, 'path "*" { capabilities = ["sudo", "create"] }')
    with pytest.raises(hv.Forbidden):
        orchestrator.auth.token.create(policies=["root"])
    with pytest.raises(hv.Forbidden):
        orchestrator.sys.enable_secrets_engine("kv", path="stolen")
    with pytest.raises(hv.Forbidden):
        orchestrator.auth.approle.create_or_update_approle("operator", token_policies=[POLICY])
    # Write-only on agent secrets: the service writes an agent's identity but never reads a value back.
    root.secrets.kv.v2.create_or_update_secret(f"agents/{A}/probe", {"v": "x"})
    try:
        with pytest.raises(hv.Forbidden):
            orchestrator.secrets.kv.v2.read_secret_version(f"agents/{A}/probe", raise_on_deleted_version=True)
    finally:
        root.secrets.kv.v2.delete_metadata_and_all_versions(f"agents/{A}/probe")


def test_engines_are_verified_not_mounted_by_the_service(openbao: OpenBaoDev) -> None:
    token = orchestrator_token(openbao)
    vault = AgentVault(VaultSettings(addr=openbao.addr, token=token))
    vault.ensure_engines()  # mounted by the operator step, its CA included
    assert vault.agents_ca_pem().startswith("-----BEGIN CERTIFICATE-----")
    missing = VaultSettings(addr=openbao.addr, token=token, transit_mount="transit-not-mounted")
    with pytest.raises(SecretsRejected):
        AgentVault(missing).ensure_engines()


def test_test_stacks_run_under_the_orchestrator_policy(stack: Stack) -> None:
    client = hvac.Client(url=stack.vault.settings.addr, token=stack.vault.settings.token)
    assert client.auth.token.lookup_self()["data"]["policies"] == [POLICY]
