"""A warm pool VM's Vault identity against the real OpenBao, under the orchestrator's least-privilege token: its token
reads its own claim and nothing else; destroy leaves nothing; the wrapped tokens never reach a log."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator

import hvac
import hvac.exceptions as hv
import pytest

from activities.errors import SecretsLeftBehind, SecretsRejected
from activities.secrets import AgentVault, PoolSecretsActivities, PoolVault, VaultSettings
from bridge.introduction import Introduction
from contracts.models import Residue
from contracts.pool import CLAIM_FIELDS, DeliverClaim, claim_path, pool_vault_name
from tests.activities.secrets.conftest import new_agent_id


def new_slot() -> str:
    return f"pv{secrets.token_hex(6)}"


@pytest.fixture
def pools(vault_settings: VaultSettings) -> Iterator[PoolVault]:
    p = PoolVault(vault_settings)
    yield p
    p.close()


@pytest.fixture
def slot() -> str:
    return new_slot()


def test_pool_token_reads_its_own_claim_and_nothing_else(
    pools: PoolVault, vault: AgentVault, root: hvac.Client, slot: str
) -> None:
    other, agent = new_slot(), new_agent_id()
    pools.mint_pool_identity(slot)
    pools.mint_pool_identity(other)
    vault.mint(agent)
    pools.deliver_claim(slot, vault.issue_bootstrap(agent))
    pools.deliver_claim(other, vault.issue_bootstrap(agent))

    bootstrap = pools.issue_pool_bootstrap(slot)
    assert (bootstrap.agent_id, bootstrap.pool_slot, bootstrap.kv_mount) == (slot, slot, "secret")
    assert bootstrap.expected_creation_path == f"auth/approle/role/{pool_vault_name(slot)}/secret-id"
    session = Introduction(bootstrap).run()  # the bridge's own path: creation-path check, unwrap, login
    assert session.secrets_loaded == 0
    kv = session.client.secrets.kv.v2

    claim = kv.read_secret_version(claim_path(slot), raise_on_deleted_version=True)["data"]["data"]
    assert sorted(claim) == sorted(CLAIM_FIELDS)
    assert claim["agent_id"] == agent

    refused: list[Callable[[], object]] = [
        lambda: kv.read_secret_version(claim_path(other), raise_on_deleted_version=True),
        lambda: kv.read_secret_metadata(claim_path(slot)),
        lambda: kv.list_secrets(f"pool/{slot}/"),
        lambda: kv.list_secrets("pool/"),
        lambda: kv.list_secrets(""),
        lambda: kv.read_secret_version(f"agents/{agent}/identity", raise_on_deleted_version=True),
        lambda: kv.list_secrets(f"agents/{agent}/"),
        lambda: kv.create_or_update_secret(claim_path(slot), {"agent_id": "evil"}),
        lambda: kv.delete_metadata_and_all_versions(claim_path(slot)),
        lambda: session.client.secrets.transit.encrypt_data(f"agent-{agent}", "aGk="),
        lambda: session.client.sys.read_policy(pool_vault_name(slot)),
        lambda: session.client.auth.approle.read_role_id(pool_vault_name(slot)),
    ]
    for attempt in refused:
        with pytest.raises(hv.Forbidden):
            attempt()
    # Exactly one path in its own policy, read only.
    rules = root.sys.read_policy(pool_vault_name(slot))["data"]["rules"]
    assert [line.strip() for line in rules.splitlines() if line.strip().startswith("path")] == [
        f'path "secret/data/pool/{slot}/claim" {{'
    ]
    assert '"read"]' in rules and "list" not in rules

    session.client.auth.token.revoke_self()
    for s in (slot, other):
        pools.destroy_pool_identity(s)
    vault.destroy(agent)


def test_mint_is_idempotent_and_role_settings_are_the_agents(pools: PoolVault, root: hvac.Client, slot: str) -> None:
    pools.mint_pool_identity(slot)
    pools.mint_pool_identity(slot)
    role = root.auth.approle.read_role(pool_vault_name(slot))["data"]
    assert role["secret_id_num_uses"] == 1
    assert role["token_policies"] == [pool_vault_name(slot)]
    assert role["token_ttl"] == 3600
    assert pools.pool_residue(slot) == Residue(policies=1, roles=1)
    pools.destroy_pool_identity(slot)


def test_bootstrap_is_single_use(pools: PoolVault, slot: str) -> None:
    pools.mint_pool_identity(slot)
    bootstrap = pools.issue_pool_bootstrap(slot)
    Introduction(bootstrap).run().client.auth.token.revoke_self()
    with pytest.raises(Exception, match="already used or expired"):
        Introduction(bootstrap).run()
    pools.destroy_pool_identity(slot)


def test_issue_never_creates_the_identity(pools: PoolVault, slot: str) -> None:
    # An attempt that outlives the identity's destroy must not bring it back.
    with pytest.raises(SecretsRejected):
        pools.issue_pool_bootstrap(slot)
    assert pools.pool_residue(slot) == Residue()


@pytest.mark.parametrize("bad", ["", "pv0123", "pv0123456789AB", "pv0123456789ab\n", 'pv0123456789ab"}', "../x"])
def test_bad_slots_are_refused_before_vault_is_asked(pools: PoolVault, bad: str) -> None:
    for call in (pools.mint_pool_identity, pools.issue_pool_bootstrap, pools.destroy_pool_identity, pools.pool_residue):
        with pytest.raises(SecretsRejected, match="slot"):
            call(bad)


def test_destroy_leaves_nothing_and_is_idempotent(
    pools: PoolVault, vault: AgentVault, slot: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = new_agent_id()
    vault.mint(agent)
    pools.mint_pool_identity(slot)
    pool_bootstrap = pools.issue_pool_bootstrap(slot)
    session = Introduction(pool_bootstrap).run()  # a login token
    unused = pools.issue_pool_bootstrap(slot)  # and a wrapping token nobody unwrapped
    agent_bootstrap = vault.issue_bootstrap(agent)
    pools.deliver_claim(slot, agent_bootstrap)
    pools.deliver_claim(slot, vault.issue_bootstrap(agent))  # a retry: overwrites, no error
    assert slot in pools.list_pool_slots()
    assert pools.pool_residue(slot) == Residue(secrets=1, policies=1, roles=1, tokens=2)

    assert pools.destroy_pool_identity(slot) == Residue(secrets=1, policies=1, roles=1, tokens=2)
    assert pools.pool_residue(slot) == Residue()
    assert pools.destroy_pool_identity(slot) == Residue()
    assert slot not in pools.list_pool_slots()
    with pytest.raises(hv.Forbidden):
        session.client.auth.token.lookup_self()
    # Only the pool's tokens went: the agent's own bootstrap is untouched.
    assert vault.residue(agent).tokens == 2
    vault.destroy(agent)
    for token in (pool_bootstrap.wrapped_secret_id, unused.wrapped_secret_id, agent_bootstrap.wrapped_secret_id):
        assert token not in caplog.text


def test_activities_deliver_verify_and_destroy(
    pools: PoolVault, vault: AgentVault, slot: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    agent = new_agent_id()
    vault.mint(agent)
    acts = PoolSecretsActivities(vault, pools, gateway_url="http://gateway.invalid:9")
    acts.mint_pool_identity(slot)
    session = Introduction(pools.issue_pool_bootstrap(slot)).run()
    # Nobody listens at this address: the poke fails, the delivery still counts (the bridge polls).
    acts.deliver_claim(DeliverClaim(agent_id=agent, slot=slot, address="http://127.0.0.1:9"))
    claim = session.client.secrets.kv.v2.read_secret_version(claim_path(slot), raise_on_deleted_version=True)
    data = claim["data"]["data"]
    assert data["agent_id"] == agent and data["gateway_url"] == "http://gateway.invalid:9"
    assert data["expected_creation_path"] == f"auth/approle/role/agent-{agent}/secret-id"
    assert data["wrapped_secret_id"] not in caplog.text
    assert "claim poke of slot" in caplog.text

    with pytest.raises(SecretsLeftBehind, match=f"pool slot {slot} still has Vault state"):
        acts.verify_pool_identity_gone(slot)
    assert acts.destroy_pool_identity(slot).total == 4
    assert acts.verify_pool_identity_gone(slot) == Residue()
    vault.destroy(agent)


def test_claim_of_a_pool_bootstrap_is_refused(pools: PoolVault, slot: str) -> None:
    pools.mint_pool_identity(slot)
    with pytest.raises(SecretsRejected, match="not an agent's"):
        pools.deliver_claim(slot, pools.issue_pool_bootstrap(slot))
    pools.destroy_pool_identity(slot)
