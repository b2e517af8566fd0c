"""The bridge logs what Vault answered when it refuses: status and Vault's error text, never a token."""

from __future__ import annotations

import hvac.exceptions as hv
import requests

from bridge.introduction import vault_answer


def test_status_and_vault_text() -> None:
    exc = hv.InvalidRequest(errors=["wrapping token is not valid or does not exist"], url="http://v/v1/x")
    assert vault_answer(exc) == "HTTP 400 InvalidRequest: wrapping token is not valid or does not exist"
    forbidden = hv.Forbidden(errors=["1 error occurred:\n\t* permission denied\n\n"])
    assert vault_answer(forbidden) == "HTTP 403 Forbidden: * permission denied"


def test_secrets_are_blanked_out() -> None:
    exc = hv.InvalidRequest(errors=["bad token s.SECRETSECRET"])
    assert vault_answer(exc, "s.SECRETSECRET", "") == "HTTP 400 InvalidRequest: bad token <redacted>"


def test_not_a_vault_answer() -> None:
    assert vault_answer(requests.exceptions.ConnectTimeout("10.0.0.1 timed out")) == "ConnectTimeout"
    assert vault_answer(hv.UnexpectedError()) == "HTTP ? UnexpectedError: no error text"
