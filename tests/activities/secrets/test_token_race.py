"""A destroy's token scan must never kill another agent's token that is being created (seen in `make chaos`).

OpenBao writes a new token's entry and accessor index before it registers the token's lease, and its token lookup
revokes "any kind of expiring token with no lease" on the spot. So `auth/token/lookup-accessor` of an accessor that the
LIST of `auth/token/accessors` shows while its creating request is still running answers 403 "permission denied" and
revokes that token: a bootstrap credential just issued to another agent is gone before its bridge looks it up
("wrapping token is not valid or does not exist"), or a bridge's fresh login token answers 403 to its first read.

Real OpenBao on Raft storage (the chaos server, not dev mode): its storage writes are slow enough for the window to be
hit by scans running while credentials are issued, as destroys of other agents do under load.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import hvac
import hvac.exceptions as hv
import pytest

import devstack
from activities.secrets import AgentVault, VaultSettings
from bridge.introduction import Introduction

AGENTS = 40


@pytest.fixture(scope="module")
def raft_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[devstack.OpenBaoServer, AgentVault]]:
    server = devstack.start_openbao_server(Path(tmp_path_factory.mktemp("openbao-raft")))
    vault = AgentVault(VaultSettings(addr=server.addr, token=server.root_token))
    try:
        vault.ensure_engines()
        yield server, vault
    finally:
        vault.close()
        server.stop()


def _scan_until(stop: threading.Event, vault: AgentVault, errors: list[BaseException]) -> None:
    """What destroys of other agents do meanwhile: scan every token in the cluster for theirs."""
    while not stop.is_set():
        try:
            vault.revoke_tokens("race-nobody")
        except Exception as exc:  # collected, asserted on below
            errors.append(exc)


def _with_scans(vault: AgentVault, work: list[threading.Thread]) -> list[BaseException]:
    stop, errors = threading.Event(), []
    scanners = [threading.Thread(target=_scan_until, args=(stop, vault, errors)) for _ in range(3)]
    for thread in scanners:
        thread.start()
    try:
        for thread in work:
            thread.start()
            time.sleep(0.02)
        for thread in work:
            thread.join()
    finally:
        stop.set()
        for thread in scanners:
            thread.join()
    return errors


def test_scans_leave_bootstrap_credentials_being_issued_alive(
    raft_vault: tuple[devstack.OpenBaoServer, AgentVault],
) -> None:
    server, vault = raft_vault
    agents = [f"race-w{i:02d}" for i in range(AGENTS)]
    for agent in agents:
        vault.mint(agent)
    issued: dict[str, str] = {}

    def issue(agent: str) -> None:
        issued[agent] = vault.issue_bootstrap(agent).wrapped_secret_id

    errors = _with_scans(vault, [threading.Thread(target=issue, args=(a,)) for a in agents])

    client = hvac.Client(url=server.addr, token="")
    dead = []
    for agent, wrapped in issued.items():
        try:
            client.adapter.post("/v1/sys/wrapping/lookup", json={"token": wrapped})
        except hv.InvalidRequest:
            dead.append(agent)
    assert len(issued) == AGENTS
    assert dead == [], f"{len(dead)} bootstrap credential(s) revoked by a concurrent token scan"
    assert errors == []


def test_scans_leave_login_tokens_being_created_alive(raft_vault: tuple[devstack.OpenBaoServer, AgentVault]) -> None:
    _, vault = raft_vault
    agents = [f"race-l{i:02d}" for i in range(AGENTS)]
    introductions = {}
    for agent in agents:
        vault.mint(agent)
        introductions[agent] = Introduction(vault.issue_bootstrap(agent))
    failed: dict[str, str] = {}

    def introduce(agent: str) -> None:
        try:
            introductions[agent].run()  # unwrap, log in, read its secrets at once
        except Exception as exc:  # collected, asserted on below
            failed[agent] = f"{type(exc).__name__}: {exc}"

    errors = _with_scans(vault, [threading.Thread(target=introduce, args=(a,)) for a in agents])

    assert failed == {}
    assert errors == []
