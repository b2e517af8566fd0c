"""The agents' AppRole mount never locks an agent out. An agent's role_id travels in its user-data, and OpenBao's
user lockout (on by default) refuses every login of a role_id after a few wrong SecretIDs, the valid single-use one
included: anyone who saw the user-data could keep the agent from ever logging in. SecretIDs are random and single
use, so lockout protects nothing there; deploy/vault/bootstrap.sh turns it off on that mount (`user_lockout_config`
with `lockout_disable`), and so does every stack that runs the operator step (`lobstack dev`, `make chaos`)."""

from __future__ import annotations

import secrets
import uuid

import hvac
import hvac.exceptions as hv

from activities.secrets import AgentVault, VaultSettings
from bridge.config import BootstrapConfig
from bridge.introduction import Introduction
from devstack import OpenBaoDev
from tests.stack import orchestrator_token

WRONG_LOGINS = 10


def wrong_logins_then_bridge_login(vault: AgentVault, agent_id: str) -> None:
    """Mint the agent (the real path), try its role_id with WRONG_LOGINS random SecretIDs, then let the real bridge
    introduction unwrap its SecretID and log in: it must be let in and read its own secrets."""
    vault.mint(agent_id)
    try:
        config: BootstrapConfig = vault.issue_bootstrap(agent_id)
        stranger = hvac.Client(url=config.vault_addr, token="", timeout=5)
        try:
            for _ in range(WRONG_LOGINS):
                try:
                    stranger.auth.approle.login(config.role_id, str(uuid.uuid4()), mount_point=config.approle_mount)
                except (hv.InvalidRequest, hv.Forbidden):  # 400 invalid SecretID; 403 once a lockout holds
                    pass
                else:
                    raise AssertionError("a random SecretID logged in")
        finally:
            stranger.adapter.close()

        session = Introduction(config).run()
        try:
            assert session.client.auth.token.lookup_self()["data"]["meta"]["role_name"] == f"agent-{agent_id}"
            assert set(session.secrets) == {f"agents/{agent_id}/identity"}
        finally:
            session.client.adapter.close()
    finally:
        vault.destroy(agent_id)


def test_wrong_secret_ids_never_lock_an_agent_out_of_the_session_s_openbao(openbao: OpenBaoDev) -> None:
    """The session's OpenBao, set up by deploy/vault/bootstrap.sh; minted with the orchestrator's own token."""
    vault = AgentVault(VaultSettings(addr=openbao.addr, token=orchestrator_token(openbao), request_timeout_s=5.0))
    try:
        wrong_logins_then_bridge_login(vault, f"t-{secrets.token_hex(6)}")
    finally:
        vault.close()


def test_bootstrap_disables_user_lockout_on_the_approle_mount(openbao: OpenBaoDev) -> None:
    orchestrator_token(openbao)  # runs deploy/vault/bootstrap.sh once per server
    root = hvac.Client(url=openbao.addr, token=openbao.root_token, timeout=5)
    try:
        tune = root.sys.read_auth_method_tuning(path="approle")
    finally:
        root.adapter.close()
    assert (tune.get("data") or tune)["user_lockout_disable"] is True
