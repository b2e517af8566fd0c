from __future__ import annotations

import hvac
import hvac.exceptions as hv
import pytest
from temporalio.testing import ActivityEnvironment

from activities.errors import SecretsLeftBehind
from activities.secrets import AgentVault, SecretsActivities, VaultSettings
from bridge.introduction import Introduction, IntroductionRejected
from contracts.models import AgentRef, Residue
from tests.activities.secrets.conftest import new_agent_id


def test_destroy_removes_everything_and_revokes_every_token(vault: AgentVault, root: hvac.Client) -> None:
    agent_id, neighbour = new_agent_id(), new_agent_id()
    ref = AgentRef(agent_id=agent_id, account_id="acme")
    acts = SecretsActivities(vault)
    env = ActivityEnvironment()

    env.run(acts.mint_secrets, ref)
    vault.mint(neighbour)
    agent_key = root.secrets.kv.v2.read_secret_version(f"agents/{agent_id}/identity", raise_on_deleted_version=True)[
        "data"
    ]["data"]["agent_key"]
    # A second secret with two versions, one folder deeper: destroy must find it and every version.
    for value in ("v1", "v2"):
        root.secrets.kv.v2.create_or_update_secret(f"agents/{agent_id}/nested/db", {"password": value})
    session = Introduction(vault.issue_bootstrap(agent_id)).run()  # a live login token
    neighbour_session = Introduction(vault.issue_bootstrap(neighbour)).run()
    unused = vault.issue_bootstrap(agent_id)  # an outstanding, never-unwrapped wrapping token

    # roles: its AppRole role and its certificate role
    before = Residue(secrets=2, policies=1, roles=2, keys=1, tokens=2)
    assert vault.residue(agent_id) == before
    with pytest.raises(SecretsLeftBehind) as err:
        env.run(acts.verify_secrets_gone, ref)
    message = str(err.value)
    assert "secrets=2 policies=1 roles=2 keys=1 tokens=2" in message
    assert agent_id in message
    for secret in (agent_key, "v2", unused.wrapped_secret_id, session.client.token):
        assert secret not in message
    assert err.value.retryable

    assert env.run(acts.destroy_secrets, ref) == before

    assert vault.residue(agent_id) == Residue()
    assert env.run(acts.verify_secrets_gone, ref) == Residue()
    for path in (f"agents/{agent_id}/identity", f"agents/{agent_id}/nested/db"):
        with pytest.raises(hv.InvalidPath):
            root.secrets.kv.v2.read_secret_metadata(path)
    with pytest.raises(hv.InvalidPath):
        root.secrets.kv.v2.list_secrets(f"agents/{agent_id}/")
    with pytest.raises(hv.InvalidPath):
        root.sys.read_policy(f"agent-{agent_id}")
    with pytest.raises(hv.InvalidPath):
        root.auth.approle.read_role(f"agent-{agent_id}")
    with pytest.raises(hv.InvalidPath):
        root.secrets.transit.read_key(f"agent-{agent_id}")
    with pytest.raises(hv.InvalidPath):
        root.secrets.pki.read_role(f"agent-{agent_id}", mount_point="pki-agents")
    # The login token is revoked, not merely stripped of its policy.
    with pytest.raises(hv.Forbidden):
        session.client.auth.token.lookup_self()
    # The outstanding bootstrap is dead: no lookup, no unwrap.
    with pytest.raises(IntroductionRejected, match="already used or expired"):
        Introduction(unused).run()
    with pytest.raises(hv.InvalidRequest):
        hvac.Client(url=unused.vault_addr, token=unused.wrapped_secret_id).sys.unwrap()

    # Destroy again: nothing found, nothing fails.
    assert env.run(acts.destroy_secrets, ref) == Residue()
    # The neighbour is untouched.
    assert neighbour_session.client.auth.token.lookup_self()["data"]["meta"]["role_name"] == f"agent-{neighbour}"
    assert vault.residue(neighbour) == Residue(secrets=1, policies=1, roles=2, keys=1, tokens=1)
    vault.destroy(neighbour)
    assert vault.residue(neighbour) == Residue()


def test_destroy_of_an_agent_that_never_existed_is_success(vault: AgentVault, agent_id: str) -> None:
    assert vault.destroy(agent_id) == Residue()
    assert vault.residue(agent_id) == Residue()


def test_destroy_finds_tokens_issued_after_a_previous_scan(vault: AgentVault, agent_id: str) -> None:
    # The accessor owner cache must not hide tokens created since the last scan.
    vault.mint(agent_id)
    assert vault.residue(agent_id).tokens == 0
    first = Introduction(vault.issue_bootstrap(agent_id)).run()
    assert vault.residue(agent_id).tokens == 1
    second = Introduction(vault.issue_bootstrap(agent_id)).run()
    assert vault.residue(agent_id).tokens == 2
    assert vault.destroy(agent_id).tokens == 2
    for session in (first, second):
        with pytest.raises(hv.Forbidden):
            session.client.auth.token.lookup_self()


def test_a_fresh_vault_object_finds_tokens_too(vault_settings: VaultSettings, agent_id: str) -> None:
    minting = AgentVault(vault_settings)
    minting.mint(agent_id)
    Introduction(minting.issue_bootstrap(agent_id)).run()
    # Another worker process (empty cache) destroys.
    assert AgentVault(vault_settings).destroy(agent_id).tokens == 1
    assert minting.residue(agent_id) == Residue()
