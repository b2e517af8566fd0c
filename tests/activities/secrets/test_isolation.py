from __future__ import annotations

import base64
from datetime import timedelta

import hvac
import hvac.exceptions as hv
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

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


def test_agent_issues_a_certificate_for_its_own_name_only(vault: AgentVault, root: hvac.Client) -> None:
    """Its certificate is how a verifier tells this agent's VM from any other: the agent must not be able to get one
    naming another agent, an address, a wildcard, or one that outlives the settings' TTL."""
    a, b = new_agent_id(), new_agent_id()
    vault.mint(a)
    vault.mint(b)
    pki = Introduction(vault.issue_bootstrap(a)).run().client.secrets.pki
    own = f"{a}.agents.lobstack.internal"

    issued = pki.generate_certificate(f"agent-{a}", own, extra_params={"ttl": "48h"}, mount_point="pki-agents")["data"]
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [own]
    assert names.get_values_for_type(x509.IPAddress) == []
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(hours=24, seconds=60)  # 48h asked
    ca = x509.load_pem_x509_certificate(vault.agents_ca_pem().encode())
    cert.verify_directly_issued_by(ca)
    assert ExtendedKeyUsageOID.SERVER_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value

    refused_by_the_role = [
        {"common_name": f"{b}.agents.lobstack.internal"},
        {"common_name": f"x.{own}"},
        {"common_name": "*.agents.lobstack.internal"},
        {"common_name": "localhost"},
        {"common_name": own, "alt_names": f"{b}.agents.lobstack.internal"},
        {"common_name": own, "ip_sans": "127.0.0.1"},
        {"common_name": own, "uri_sans": "spiffe://lobstack/agent"},
    ]
    for params in refused_by_the_role:
        common_name = params.pop("common_name")
        with pytest.raises(hv.InvalidRequest, match="not allowed"):
            pki.generate_certificate(f"agent-{a}", common_name, extra_params=params, mount_point="pki-agents")
    # Another agent's role, signing its own key under any role, the CA itself: 403 from OpenBao.
    with pytest.raises(hv.Forbidden):
        pki.generate_certificate(f"agent-{b}", f"{b}.agents.lobstack.internal", mount_point="pki-agents")
    with pytest.raises(hv.Forbidden):
        pki.sign_verbatim("csr", mount_point="pki-agents")
    with pytest.raises(hv.Forbidden):
        pki.sign_certificate(f"agent-{a}", "csr", own, mount_point="pki-agents")
    with pytest.raises(hv.Forbidden):
        pki.generate_root("internal", own, mount_point="pki-agents")
    with pytest.raises(hv.Forbidden):
        pki.read_role(f"agent-{a}", mount_point="pki-agents")
    with pytest.raises(hv.Forbidden):
        pki.create_or_update_role(f"agent-{a}", extra_params={"allow_any_name": True}, mount_point="pki-agents")

    # Destroyed, the agent can issue nothing more: its role is gone and so is its token.
    vault.destroy(a)
    with pytest.raises(hv.Forbidden):
        pki.generate_certificate(f"agent-{a}", own, mount_point="pki-agents")
