"""Fixtures for the secrets tests: everything runs against the session's real OpenBao dev server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import hvac
import pytest

from activities.secrets import AgentVault, VaultSettings
from devstack import OpenBaoDev
from tests.stack import orchestrator_token


@pytest.fixture(scope="session")
def vault_settings(openbao: OpenBaoDev) -> VaultSettings:
    """The orchestrator's settings: a token holding only its least-privilege policy (the operator mounted engines)."""
    settings = VaultSettings(addr=openbao.addr, token=orchestrator_token(openbao), request_timeout_s=5.0)
    AgentVault(settings).ensure_engines()
    return settings


@pytest.fixture
def vault(vault_settings: VaultSettings) -> Iterator[AgentVault]:
    v = AgentVault(vault_settings)
    yield v
    v.close()


@pytest.fixture
def root(openbao: OpenBaoDev) -> Iterator[hvac.Client]:
    client = hvac.Client(url=openbao.addr, token=openbao.root_token, timeout=5)
    yield client
    client.adapter.close()


def new_agent_id() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def agent_id() -> str:
    return new_agent_id()
