from __future__ import annotations

import dataclasses

import hvac.exceptions as hv
import pytest
import requests

from activities.errors import SecretsRejected, SecretsUnavailable
from activities.secrets import AgentVault, VaultSettings, translate
from devstack import free_port


def test_closed_port_is_unavailable_and_retryable(vault_settings: VaultSettings, agent_id: str) -> None:
    secret_token = "s.ThisMustNeverAppearInMessages"
    settings = VaultSettings(addr=f"http://127.0.0.1:{free_port()}", token=secret_token, request_timeout_s=2)
    vault = AgentVault(settings)
    for call in (lambda: vault.mint(agent_id), lambda: vault.residue(agent_id), lambda: vault.destroy(agent_id)):
        with pytest.raises(SecretsUnavailable) as err:
            call()
        assert err.value.retryable
        assert "connection failed" in str(err.value)
        assert secret_token not in str(err.value)
        app = err.value.to_application_error()
        assert not app.non_retryable
        assert app.type == "SecretsUnavailable"
        assert isinstance(err.value.__cause__, requests.exceptions.ConnectionError)


def test_bad_token_is_rejected_and_not_retryable(vault_settings: VaultSettings, agent_id: str) -> None:
    bad_token = "s.NotAValidTokenAtAllXXXXXXXX"
    vault = AgentVault(dataclasses.replace(vault_settings, token=bad_token))
    with pytest.raises(SecretsRejected) as err:
        vault.mint(agent_id)
    assert not err.value.retryable
    assert err.value.to_application_error().non_retryable
    assert f"sys/policies/acl/agent-{agent_id}" in str(err.value)
    assert "Forbidden" in str(err.value)
    assert bad_token not in str(err.value)
    with pytest.raises(SecretsRejected):
        vault.residue(agent_id)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (hv.VaultDown("sealed"), SecretsUnavailable),
        (hv.InternalServerError("boom"), SecretsUnavailable),
        (hv.BadGateway(), SecretsUnavailable),
        (hv.RateLimitExceeded(), SecretsUnavailable),
        (hv.UnexpectedError(), SecretsUnavailable),
        (requests.exceptions.ReadTimeout(), SecretsUnavailable),
        (requests.exceptions.ConnectionError(), SecretsUnavailable),
        (hv.Forbidden("permission denied"), SecretsRejected),
        (hv.Unauthorized(), SecretsRejected),
        (hv.InvalidRequest("s.leaked-token in body"), SecretsRejected),
        (hv.InvalidPath(), SecretsRejected),
    ],
)
def test_translation_table(exc: Exception, kind: type) -> None:
    translated = translate(exc, "read", "secret/data/agents/x/identity")
    assert type(translated) is kind
    assert str(translated).startswith("vault read secret/data/agents/x/identity: ")
    assert "leaked" not in str(translated)  # hvac's message (a response body) is never copied
