"""TokenFinder against a real OpenBao: a destroy's token scan must not stop at an accessor whose token is gone.

OpenBao answers lookup-accessor with 403 "bad token" when the accessor outlives its token entry (during a
revocation, or for good when a restart cut one short; seen in `make chaos`). That window cannot be hit on purpose, so
the one lookup is made to answer exactly what the server sends then; every other call goes to the real server."""

from __future__ import annotations

from typing import Any

import hvac
import hvac.exceptions as hv
import pytest

from activities.errors import SecretsRejected
from activities.secrets.names import AgentNames
from activities.secrets.settings import VaultSettings
from activities.secrets.tokens import TokenFinder
from devstack import OpenBaoDev


class _AnswersOnce:
    """The real token API, except that lookup-accessor of one accessor raises `error`."""

    def __init__(self, real: Any, accessor: str, error: hv.VaultError) -> None:
        self._real, self._accessor, self._error = real, accessor, error

    def lookup_accessor(self, accessor: str) -> Any:
        if accessor == self._accessor:
            raise self._error
        return self._real.lookup_accessor(accessor)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def _finder_with(openbao: OpenBaoDev, error: hv.VaultError) -> tuple[TokenFinder, str]:
    client = hvac.Client(url=openbao.addr, token=openbao.root_token)
    dangling = client.auth.token.create(policies=["default"], ttl="5m")["auth"]["accessor"]
    client.auth.token = _AnswersOnce(client.auth.token, dangling, error)  # type: ignore[misc]
    return TokenFinder(client, "approle"), dangling


def test_an_accessor_that_outlived_its_token_is_nobodys(openbao: OpenBaoDev) -> None:
    finder, dangling = _finder_with(openbao, hv.Forbidden("bad token", errors=["bad token"]))
    assert finder.accessors_of(AgentNames.of("tokens-a1", VaultSettings(addr=openbao.addr, token=""))) == []
    assert dangling not in finder.owners() and "tokens-a1" not in finder.owners()


def test_a_real_permission_problem_is_raised(openbao: OpenBaoDev) -> None:
    finder, _ = _finder_with(openbao, hv.Forbidden("permission denied", errors=["permission denied"]))
    with pytest.raises(SecretsRejected, match="lookup-accessor"):
        finder.accessors_of(AgentNames.of("tokens-a1", VaultSettings(addr=openbao.addr, token="")))
