from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from activities.errors import SecretsRejected
from activities.secrets import AgentVault, VaultSettings
from bridge.introduction import REASON_USED, Introduction, IntroductionRejected
from tests.activities.secrets.conftest import new_agent_id


def _lookup(root: hvac.Client, wrapped: str) -> dict[str, Any]:
    found: dict[str, Any] = root.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapped})["data"]
    return found


def test_bootstrap_is_wrapped_short_lived_and_at_the_right_path(
    vault: AgentVault, root: hvac.Client, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault.mint(agent_id)
    config = vault.issue_bootstrap(agent_id, address_file="/tmp/x.addr")

    assert config.agent_id == agent_id
    assert config.vault_addr == vault.settings.addr
    assert config.role_id == root.auth.approle.read_role_id(f"agent-{agent_id}")["data"]["role_id"]
    assert config.expected_creation_path == f"auth/approle/role/agent-{agent_id}/secret-id"
    assert (config.approle_mount, config.kv_mount, config.kv_prefix) == ("approle", "secret", f"agents/{agent_id}/")
    assert config.address_file == "/tmp/x.addr"
    info = _lookup(root, config.wrapped_secret_id)
    assert info["creation_path"] == config.expected_creation_path
    assert 0 < info["creation_ttl"] <= 600
    assert config.wrapped_secret_id not in repr(config)
    assert config.wrapped_secret_id not in caplog.text


def test_wrap_ttl_follows_settings(vault_settings: VaultSettings, root: hvac.Client, agent_id: str) -> None:
    vault = AgentVault(dataclasses.replace(vault_settings, wrap_ttl_s=60))
    vault.mint(agent_id)
    config = vault.issue_bootstrap(agent_id)
    assert _lookup(root, config.wrapped_secret_id)["creation_ttl"] == 60


def test_bootstrap_without_mint_is_rejected(vault: AgentVault, agent_id: str) -> None:
    with pytest.raises(SecretsRejected, match=f"auth/approle/role/agent-{agent_id}/role-id"):
        vault.issue_bootstrap(agent_id)


def test_unwrap_works_once(
    vault: AgentVault, root: hvac.Client, agent_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault.mint(agent_id)
    config = vault.issue_bootstrap(agent_id)

    session = Introduction(config).run()
    assert session.secrets_loaded == 1
    assert set(session.secrets) == {f"agents/{agent_id}/identity"}
    assert session.client.auth.token.lookup_self()["data"]["meta"]["role_name"] == f"agent-{agent_id}"

    # The same config a second time: the token is spent.
    with pytest.raises(IntroductionRejected) as err:
        Introduction(config).run()
    assert str(err.value) == REASON_USED
    # The bridge's log says what Vault actually answered (status and Vault's text), never the token.
    assert "vault answered sys/wrapping/lookup: HTTP 400 InvalidRequest: wrapping token is not valid" in caplog.text
    # And a raw unwrap of it fails as well.
    with pytest.raises(hv.InvalidRequest):
        hvac.Client(url=config.vault_addr, token=config.wrapped_secret_id).sys.unwrap()
    assert config.wrapped_secret_id not in caplog.text


def test_token_from_another_creation_path_is_refused_before_unwrap(vault: AgentVault, root: hvac.Client) -> None:
    a, b = new_agent_id(), new_agent_id()
    vault.mint(a)
    vault.mint(b)
    config_a = vault.issue_bootstrap(a)
    config_b = vault.issue_bootstrap(b)
    swapped = dataclasses.replace(config_a, wrapped_secret_id=config_b.wrapped_secret_id)

    with pytest.raises(IntroductionRejected, match="possible tampering") as err:
        Introduction(swapped).run()
    assert config_b.wrapped_secret_id not in str(err.value)
    assert config_b.expected_creation_path in str(err.value)
    # Refused by the lookup alone: B's token was not consumed and still introduces B.
    assert _lookup(root, config_b.wrapped_secret_id)["creation_path"] == config_b.expected_creation_path
    assert Introduction(config_b).run().secrets_loaded == 1

    # A token wrapping arbitrary data (sys/wrapping/wrap) is refused the same way.
    forged = root.sys.wrap(payload={"secret_id": "attacker-chosen"}, ttl=60)["wrap_info"]["token"]
    with pytest.raises(IntroductionRejected, match="'sys/wrapping/wrap'"):
        Introduction(dataclasses.replace(config_a, wrapped_secret_id=forged)).run()
    assert Introduction(config_a).run().secrets_loaded == 1


def test_garbage_token_is_refused_as_used_or_expired(vault: AgentVault, agent_id: str) -> None:
    vault.mint(agent_id)
    config = dataclasses.replace(vault.issue_bootstrap(agent_id), wrapped_secret_id="s.AAAAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(IntroductionRejected, match="already used or expired"):
        Introduction(config).run()


def test_an_expired_bootstrap_credential_is_refused(
    vault_settings: VaultSettings, root: hvac.Client, agent_id: str
) -> None:
    vault = AgentVault(dataclasses.replace(vault_settings, wrap_ttl_s=1))
    vault.mint(agent_id)
    config = vault.issue_bootstrap(agent_id)
    # Vault expires the wrapping token itself; wait until it says so (bounded), then introduce too late.
    deadline = time.monotonic() + 15
    while True:
        try:
            _lookup(root, config.wrapped_secret_id)
        except hv.InvalidRequest:
            break
        assert time.monotonic() < deadline, "the 1 s wrapping token is still alive after 15 s"
        time.sleep(0.2)
    with pytest.raises(IntroductionRejected) as err:
        Introduction(config).run()
    assert str(err.value) == REASON_USED
