from __future__ import annotations

import base64

import hvac
import hvac.exceptions as hv
import pytest

from activities.secrets import AgentVault
from bridge.introduction import Introduction
from tests.activities.secrets.conftest import new_agent_id


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_agent_reads_only_its_own_secrets_and_key(vault: AgentVault, root: hvac.Client) -> None:
    a, b = new_agent_id(), new_agent_id()
    vault.mint(a)
    vault.mint(b)
    root.secrets.kv.v2.create_or_update_secret(f"agents/{a}/nested/db", {"password": "a-pass"})
    session = Introduction(vault.issue_bootstrap(a)).run()  # the real introduction path
    client = session.client
    kv = client.secrets.kv.v2

    assert session.secrets_loaded == 2
    assert kv.read_secret_version(f"agents/{a}/nested/db", raise_on_deleted_version=True)["data"]["data"] == {
        "password": "a-pass"
    }
    assert sorted(kv.list_secrets(f"agents/{a}/")["data"]["keys"]) == ["identity", "nested/"]

    with pytest.raises(hv.Forbidden):
        kv.read_secret_version(f"agents/{b}/identity", raise_on_deleted_version=True)
    with pytest.raises(hv.Forbidden):
        kv.read_secret_metadata(f"agents/{b}/identity")
    with pytest.raises(hv.Forbidden):
        kv.list_secrets(f"agents/{b}/")
    with pytest.raises(hv.Forbidden):
        kv.list_secrets("agents/")
    # Read-only, even on its own path.
    with pytest.raises(hv.Forbidden):
        kv.create_or_update_secret(f"agents/{a}/identity", {"agent_key": "overwritten"})
    with pytest.raises(hv.Forbidden):
        kv.delete_metadata_and_all_versions(f"agents/{a}/identity")

    transit = client.secrets.transit
    ciphertext = transit.encrypt_data(f"agent-{a}", _b64("hello"))["data"]["ciphertext"]
    assert transit.decrypt_data(f"agent-{a}", ciphertext)["data"]["plaintext"] == _b64("hello")
    b_ciphertext = root.secrets.transit.encrypt_data(f"agent-{b}", _b64("b only"))["data"]["ciphertext"]
    with pytest.raises(hv.Forbidden):
        transit.encrypt_data(f"agent-{b}", _b64("hello"))
    with pytest.raises(hv.Forbidden):
        transit.decrypt_data(f"agent-{b}", b_ciphertext)
    with pytest.raises(hv.Forbidden):
        transit.read_key(f"agent-{a}")
    with pytest.raises(hv.Forbidden):
        transit.rotate_key(f"agent-{a}")
    # Nor can it touch Vault's configuration.
    with pytest.raises(hv.Forbidden):
        client.sys.read_policy(f"agent-{b}")
    with pytest.raises(hv.Forbidden):
        client.auth.approle.generate_secret_id(f"agent-{a}")
