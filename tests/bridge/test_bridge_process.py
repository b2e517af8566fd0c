from __future__ import annotations

import dataclasses
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx

from activities.secrets import AgentVault
from bridge.introduction import REASON_USED
from contracts.bootstrap import BootstrapConfig
from contracts.models import Residue
from devstack import free_port
from tests.bridge.conftest import BridgeProcess


def test_bridge_introduces_serves_health_and_refuses_a_replayed_config(
    bridge_vault: AgentVault, agent_id: str, tmp_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    bridge_vault.mint(agent_id)
    config = bridge_vault.issue_bootstrap(agent_id, listen_port=0, address_file=str(tmp_path / "first.addr"))

    first = start_bridge(config, name="first")
    url = first.base_url()
    assert url.startswith("http://127.0.0.1:")
    code, body = first.wait_status("healthy")
    assert code == 200
    idle = body.pop("idle_s")
    assert body == {"agent_id": agent_id, "status": "healthy", "secrets_loaded": 1, "reason": ""}
    assert isinstance(idle, float) and idle >= 0
    assert httpx.get(f"{url}/nothing-here", timeout=2).status_code == 404
    assert bridge_vault.residue(agent_id).tokens == 1  # the bridge's login token

    # The same (now spent) credential again, as an interceptor who copied the user-data would hold it.
    replay = dataclasses.replace(config, address_file=str(tmp_path / "second.addr"))
    second = start_bridge(replay, name="second")
    # A spent credential means someone else may hold the agent's identity: a status of its own, not just "unhealthy".
    code, body = second.wait_status("compromised")
    assert code == 503
    assert body["agent_id"] == agent_id
    assert body["secrets_loaded"] == 0
    assert body["reason"] == REASON_USED
    assert "interception" in body["reason"]
    # Still serving after the refusal; the first bridge is unaffected.
    assert second.health()[1]["status"] == "compromised"
    assert first.health()[0] == 200

    assert first.stop(signal.SIGTERM) == 0
    assert second.stop(signal.SIGTERM) == 0
    # A stopped bridge can never log in again (single-use SecretID), so it revokes its own token on the way out.
    assert bridge_vault.residue(agent_id) == Residue(secrets=1, policies=1, roles=2, keys=1, tokens=0)
    for proc in (first, second):
        assert config.wrapped_secret_id not in proc.log()
    bridge_vault.destroy(agent_id)


def test_bridge_reports_starting_then_unhealthy_when_vault_is_unreachable(
    agent_id: str, tmp_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    config = BootstrapConfig(
        agent_id=agent_id,
        vault_addr=f"http://127.0.0.1:{free_port()}",
        role_id="role",
        wrapped_secret_id="s.NeverUsedBecauseVaultIsDown",
        expected_creation_path=f"auth/approle/role/agent-{agent_id}/secret-id",
        address_file=str(tmp_path / "bridge.addr"),
    )
    proc = start_bridge(config, "--retry-for", "4")
    code, body = proc.health()
    assert (code, body["status"]) == (503, "starting")
    code, body = proc.wait_status("unhealthy")
    assert code == 503
    assert "vault unreachable" in body["reason"]
    assert "gave up after" in body["reason"]
    assert config.wrapped_secret_id not in body["reason"]
    assert proc.stop(signal.SIGINT) == 0
    assert config.wrapped_secret_id not in proc.log()


def test_bridge_with_unreadable_config_exits_2_without_echoing_it(tmp_path: Path, bridge_python: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"wrapped_secret_id": "s.SecretLookingValue"')
    result = subprocess.run(
        [bridge_python, "-I", "-m", "bridge", "--config", str(bad)],
        cwd=tmp_path,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert b"SecretLookingValue" not in result.stderr + result.stdout
    assert b"cannot load bootstrap config" in result.stderr
