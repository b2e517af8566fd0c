from __future__ import annotations

import uuid
from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from activities.errors import SecretsRejected
from activities.secrets import AgentVault, VaultSettings, from_env, render_agent_policy


def _identity(root: hvac.Client, agent_id: str) -> dict[str, Any]:
    path = f"agents/{agent_id}/identity"
    identity: dict[str, Any] = root.secrets.kv.v2.read_secret_version(path, raise_on_deleted_version=True)["data"]
    return identity


def test_mint_is_idempotent(vault: AgentVault, root: hvac.Client, agent_id: str) -> None:
    first = vault.mint(agent_id, account_id="acme")
    key = _identity(root, agent_id)["data"]["agent_key"]
    second = vault.mint(agent_id, account_id="acme")

    assert first == second
    assert first.kv_path == f"secret/agents/{agent_id}/"
    assert first.policy == first.role == first.transit_key == f"agent-{agent_id}"
    identity = _identity(root, agent_id)
    assert identity["data"]["agent_key"] == key  # not rotated by the retry
    assert identity["metadata"]["version"] == 1
    assert len(key) >= 40
    meta = root.secrets.kv.v2.read_secret_metadata(f"agents/{agent_id}/identity")["data"]
    assert meta["custom_metadata"] == {"agent_id": agent_id, "account_id": "acme", "managed_by": "lobstack"}
    assert root.secrets.kv.v2.list_secrets(f"agents/{agent_id}/")["data"]["keys"] == ["identity"]
    assert root.sys.list_policies()["data"]["policies"].count(f"agent-{agent_id}") == 1
    assert root.auth.approle.list_roles()["data"]["keys"].count(f"agent-{agent_id}") == 1
    assert root.secrets.transit.list_keys()["data"]["keys"].count(f"agent-{agent_id}") == 1


def test_policy_text_is_exactly_scoped(vault: AgentVault, root: hvac.Client, agent_id: str) -> None:
    expected = f"""# Lobstack agent {agent_id}: its own secrets, Transit key and certificate, nothing else.
path "secret/data/agents/{agent_id}/*" {{
  capabilities = ["read"]
}}

path "secret/metadata/agents/{agent_id}/" {{
  capabilities = ["list"]
}}

path "secret/metadata/agents/{agent_id}/*" {{
  capabilities = ["read", "list"]
}}

path "transit/encrypt/agent-{agent_id}" {{
  capabilities = ["update"]
}}

path "transit/decrypt/agent-{agent_id}" {{
  capabilities = ["update"]
}}

path "pki-agents/issue/agent-{agent_id}" {{
  capabilities = ["update"]
}}
"""
    assert render_agent_policy(agent_id, vault.settings) == expected
    vault.mint(agent_id)
    assert root.sys.read_policy(f"agent-{agent_id}")["data"]["rules"] == expected


def test_role_and_key_settings(vault: AgentVault, root: hvac.Client, agent_id: str) -> None:
    vault.mint(agent_id)
    role = root.auth.approle.read_role(f"agent-{agent_id}")["data"]
    assert role["token_policies"] == [f"agent-{agent_id}"]
    assert role["secret_id_num_uses"] == 1
    assert role["secret_id_ttl"] == 600
    assert role["token_ttl"] == 3600
    assert role["token_max_ttl"] == 4 * 3600
    assert role["token_num_uses"] == 0
    assert role["bind_secret_id"] is True

    key = root.secrets.transit.read_key(f"agent-{agent_id}")["data"]
    assert key["type"] == "aes256-gcm96"
    assert key["auto_rotate_period"] == 90 * 24 * 3600
    assert key["deletion_allowed"] is False
    assert key["exportable"] is False

    cert_role = root.secrets.pki.read_role(f"agent-{agent_id}", mount_point="pki-agents")["data"]
    assert cert_role["allowed_domains"] == [f"{agent_id}.agents.lobstack.internal"]
    assert cert_role["allow_bare_domains"] is True
    for widening in ("allow_subdomains", "allow_glob_domains", "allow_any_name", "allow_localhost", "allow_ip_sans"):
        assert cert_role[widening] is False, widening
    assert cert_role["allow_wildcard_certificates"] is False
    assert cert_role["allowed_uri_sans"] == [] and cert_role["allowed_other_sans"] == []
    assert (cert_role["server_flag"], cert_role["client_flag"]) == (True, False)
    assert (cert_role["key_type"], cert_role["key_bits"]) == ("ec", 256)
    assert cert_role["max_ttl"] == cert_role["ttl"] == 24 * 3600
    assert (cert_role["no_store"], cert_role["generate_lease"]) == (True, False)


@pytest.mark.parametrize("bad", ["Bad_Id", "a/../b", "-x", "x" * 41, "", 'a"}'])
def test_bad_agent_id_is_refused_before_anything_is_created(vault: AgentVault, root: hvac.Client, bad: str) -> None:
    before = root.sys.list_policies()["data"]["policies"]
    with pytest.raises(SecretsRejected, match="agent_id"):
        vault.mint(bad)
    with pytest.raises(SecretsRejected, match="agent_id"):
        render_agent_policy(bad, vault.settings)
    assert root.sys.list_policies()["data"]["policies"] == before


def test_ensure_engines_is_idempotent_and_mounts_missing_engines(
    vault_settings: VaultSettings, root: hvac.Client
) -> None:
    suffix = uuid.uuid4().hex[:8]
    settings = VaultSettings(
        addr=vault_settings.addr,
        token=root.token,  # mounting engines is the operator's step; the orchestrator's policy only reads mounts
        kv_mount=f"kv-{suffix}",
        transit_mount=f"transit-{suffix}",
        approle_mount=f"approle-{suffix}",
        pki_mount=f"pki-{suffix}",
    )
    vault = AgentVault(settings)
    vault.ensure_engines()
    vault.ensure_engines()
    mounts = root.sys.list_mounted_secrets_engines()["data"]
    assert mounts[f"kv-{suffix}/"]["type"] == "kv"
    assert mounts[f"kv-{suffix}/"]["options"]["version"] == "2"
    assert mounts[f"transit-{suffix}/"]["type"] == "transit"
    assert mounts[f"pki-{suffix}/"]["type"] == "pki"
    issuers = root.list(f"pki-{suffix}/issuers")
    assert isinstance(issuers, dict), issuers
    assert len(issuers["data"]["keys"]) == 1, "a second ensure_engines made a second CA"
    assert root.sys.list_auth_methods()["data"][f"approle-{suffix}/"]["type"] == "approle"
    # Mounted by the service itself, AppRole still never locks an agent out after wrong SecretIDs.
    answer = root.read(f"sys/auth/approle-{suffix}/tune")
    assert isinstance(answer, dict), answer
    tune = answer["data"]
    assert tune["user_lockout_disable"] is True, tune

    # The whole lifecycle works on non-default mounts too.
    agent_id = f"t-{suffix}"
    vault.mint(agent_id)
    config = vault.issue_bootstrap(agent_id)
    assert config.expected_creation_path == f"auth/approle-{suffix}/role/agent-{agent_id}/secret-id"
    assert config.kv_mount == f"kv-{suffix}"
    # 1 secret, policy, AppRole and certificate roles, key, the wrapping token
    assert vault.residue(agent_id).total == 6
    # A mount the service made itself has its CA, and the agent's role issues from it.
    assert vault.agents_ca_pem() == root.secrets.pki.read_ca_certificate(mount_point=f"pki-{suffix}")
    vault.destroy(agent_id)
    assert vault.residue(agent_id).total == 0


def test_ensure_engines_refuses_a_mount_of_the_wrong_type(vault_settings: VaultSettings, root: hvac.Client) -> None:
    path = f"kv1-{uuid.uuid4().hex[:8]}"
    root.sys.enable_secrets_engine("kv", path=path, options={"version": "1"})
    settings = VaultSettings(addr=vault_settings.addr, token=vault_settings.token, kv_mount=path)
    with pytest.raises(SecretsRejected, match="kv version 1"):
        AgentVault(settings).ensure_engines()


def test_settings_from_env() -> None:
    env = {
        "VAULT_ADDR": "http://vault:8200",
        "VAULT_TOKEN": "s.not-a-real-token",
        "LOBSTACK_VAULT_KV_MOUNT": "kv",
        "LOBSTACK_VAULT_WRAP_TTL_S": "120",
        "LOBSTACK_VAULT_TIMEOUT_S": "2.5",
        "LOBSTACK_VAULT_AGENT_ADDR": "http://10.0.0.2:8200",
        "LOBSTACK_VAULT_PKI_MOUNT": "pki-test",
        "LOBSTACK_VAULT_CERT_TTL_S": "3600",
    }
    s = from_env(env)
    assert (s.addr, s.kv_mount, s.transit_mount, s.approle_mount) == ("http://vault:8200", "kv", "transit", "approle")
    assert (s.wrap_ttl_s, s.request_timeout_s, s.bootstrap_addr) == (120, 2.5, "http://10.0.0.2:8200")
    assert (s.pki_mount, s.cert_ttl_s) == ("pki-test", 3600)
    assert "not-a-real-token" not in repr(s)
    with pytest.raises(ValueError, match="cert_ttl_s: 90000 is not allowed; must be 60 to 86400 seconds"):
        from_env({**env, "LOBSTACK_VAULT_CERT_TTL_S": "90000"})
    with pytest.raises(ValueError, match="pki_mount"):
        from_env({**env, "LOBSTACK_VAULT_PKI_MOUNT": 'pki" {'})
    with pytest.raises(ValueError, match="wrap_ttl_s"):
        from_env({**env, "LOBSTACK_VAULT_WRAP_TTL_S": "601"})
    with pytest.raises(ValueError, match="kv_mount"):
        from_env({**env, "LOBSTACK_VAULT_KV_MOUNT": "secret/../sys"})
    with pytest.raises(ValueError, match="VAULT_ADDR"):
        from_env({})


def test_reads_of_missing_things_are_invalid_path(root: hvac.Client, agent_id: str) -> None:
    # The idempotency of destroy rests on these answers of the real server; pin them.
    with pytest.raises(hv.InvalidPath):
        root.sys.read_policy(f"agent-{agent_id}")
    with pytest.raises(hv.InvalidPath):
        root.auth.approle.read_role(f"agent-{agent_id}")
    with pytest.raises(hv.InvalidPath):
        root.secrets.transit.read_key(f"agent-{agent_id}")
