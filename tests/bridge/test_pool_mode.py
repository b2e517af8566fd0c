"""A warm pool VM's bridge against the real OpenBao: it introduces its pool identity, answers /health for its slot,
waits for its claim (poked by POST /claim), drops its pool token and becomes the agent; an intercepted claim leaves it
compromised, a destroyed pool identity unhealthy. In-process (the bridge's own classes), plus one run of the shipped
bridge as a process."""

from __future__ import annotations

import dataclasses
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import hvac
import pytest

import bridge.pool
from activities.health import parse_health
from activities.secrets import AgentVault, PoolSecretsActivities, PoolVault, VaultSettings
from bridge.agent import Bridge
from bridge.health import HealthState
from bridge.pool import MIN_CLAIM_READ_GAP_S
from bridge.server import HealthServer
from contracts.bootstrap import BootstrapConfig
from contracts.health import is_compromised
from contracts.models import Residue
from contracts.pool import DeliverClaim, claim_path
from devstack import OpenBaoDev
from tests.bridge.conftest import BridgeProcess
from tests.stack import orchestrator_token

T = TypeVar("T")


@pytest.fixture(scope="module")
def settings(openbao: OpenBaoDev) -> VaultSettings:
    s = VaultSettings(addr=openbao.addr, token=orchestrator_token(openbao), request_timeout_s=5.0)
    AgentVault(s).ensure_engines()
    return s


@pytest.fixture
def vault(settings: VaultSettings) -> Iterator[AgentVault]:
    v = AgentVault(settings)
    yield v
    v.close()


@pytest.fixture
def pools(settings: VaultSettings) -> Iterator[PoolVault]:
    p = PoolVault(settings)
    yield p
    p.close()


@pytest.fixture
def root(openbao: OpenBaoDev) -> Iterator[hvac.Client]:
    client = hvac.Client(url=openbao.addr, token=openbao.root_token, timeout=5)
    yield client
    client.adapter.close()


@pytest.fixture
def slot() -> str:
    return f"pv{secrets.token_hex(6)}"


@pytest.fixture
def agent(vault: AgentVault, root: hvac.Client) -> Iterator[str]:
    agent_id = f"p-{secrets.token_hex(6)}"
    vault.mint(agent_id)
    root.secrets.kv.v2.create_or_update_secret(f"agents/{agent_id}/db", {"password": "s3cret"})
    yield agent_id
    vault.destroy(agent_id)


def wait_for(check: Callable[[], T | None], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    delay = 0.02
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(delay)
        delay = min(delay * 1.5, 0.2)
    pytest.fail(f"no {what} after {timeout}s")


def health(base_url: str) -> httpx.Response:
    return httpx.get(f"{base_url}/health", timeout=2.0)


def wait_health(base_url: str, **expected: object) -> httpx.Response:
    def check() -> httpx.Response | None:
        resp = health(base_url)
        body = resp.json()
        return resp if all(body.get(k) == v for k, v in expected.items()) else None

    return wait_for(check, f"/health with {expected}")


@pytest.fixture
def pool_bridge(pools: PoolVault, slot: str) -> Iterator[Callable[..., tuple[Bridge, BootstrapConfig]]]:
    """A started pool VM bridge of `slot`; it polls once a minute, so only a poke finds its claim within a test."""
    started: list[Bridge] = []

    def start(**changes: Any) -> tuple[Bridge, BootstrapConfig]:
        pools.mint_pool_identity(slot)
        config = dataclasses.replace(pools.issue_pool_bootstrap(slot), listen_port=0, claim_poll_s=60.0, **changes)
        b = Bridge(config, retry_for_s=5.0, first_backoff_s=0.05, vault_timeout_s=5.0)
        started.append(b)
        b.start()
        return b, config

    yield start
    for b in started:
        b.stop()
    pools.destroy_pool_identity(slot)


def test_pool_bridge_waits_healthy_for_its_slot_then_becomes_the_agent_it_is_claimed_for(
    pool_bridge: Callable[..., tuple[Bridge, BootstrapConfig]],
    pools: PoolVault,
    vault: AgentVault,
    root: hvac.Client,
    slot: str,
    agent: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    b, config = pool_bridge()
    resp = wait_health(b.base_url, status="healthy")
    body = resp.json()
    assert resp.status_code == 200
    assert body["agent_id"] == slot and body["pool"] is True and body["secrets_loaded"] == 0
    assert parse_health(slot, resp).healthy  # what the pool workflow's wait_healthy(agent_id=slot) sees
    assert not parse_health(agent, resp).healthy
    assert pools.pool_residue(slot).tokens == 1  # its login token

    # The lifecycle's delivery: mint the agent's SecretID, write the claim, poke.
    PoolSecretsActivities(vault, pools).deliver_claim(DeliverClaim(agent_id=agent, slot=slot, address=b.base_url))
    resp = wait_health(b.base_url, agent_id=agent, status="healthy")
    body = resp.json()
    assert body["secrets_loaded"] == 2 and "pool" not in body  # identity and db
    assert parse_health(agent, resp).healthy
    assert b.session is not None and b.session.secrets[f"agents/{agent}/db"] == {"password": "s3cret"}
    assert b.config.agent_id == agent and b.config.pool_slot == "" and b.config.listen_port == config.listen_port

    # The pool token was revoked, the agent's lives.
    assert pools.pool_residue(slot) == Residue(secrets=1, policies=1, roles=1)
    assert vault.residue(agent).tokens == 1
    claim = root.secrets.kv.v2.read_secret_version(claim_path(slot), raise_on_deleted_version=True)["data"]["data"]
    for token in (config.wrapped_secret_id, claim["wrapped_secret_id"], b.session.client.token):
        assert token and token not in caplog.text


def test_an_intercepted_claim_leaves_the_bridge_compromised(
    pool_bridge: Callable[..., tuple[Bridge, BootstrapConfig]],
    pools: PoolVault,
    vault: AgentVault,
    root: hvac.Client,
    agent: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    b, _ = pool_bridge()
    wait_health(b.base_url, status="healthy")
    bootstrap = vault.issue_bootstrap(agent)
    root.sys.unwrap(bootstrap.wrapped_secret_id)  # the interceptor got there first
    pools.deliver_claim(b.config.pool_slot, bootstrap)
    assert httpx.post(f"{b.base_url}/claim", timeout=2.0).status_code == 202

    resp = wait_health(b.base_url, agent_id=agent, status="compromised")
    assert resp.status_code == 503
    assert is_compromised(parse_health(agent, resp))
    assert b.session is None
    assert bootstrap.wrapped_secret_id not in caplog.text


def test_a_destroyed_pool_identity_turns_the_waiting_bridge_unhealthy(
    pool_bridge: Callable[..., tuple[Bridge, BootstrapConfig]], pools: PoolVault, slot: str
) -> None:
    b, _ = pool_bridge()
    wait_health(b.base_url, status="healthy")
    pools.destroy_pool_identity(slot)  # the pool shrank
    b.poke()
    body = wait_health(b.base_url, status="unhealthy").json()
    assert body["agent_id"] == slot and body["reason"].startswith("pool identity no longer valid")
    assert pools.pool_residue(slot) == Residue()


def test_claim_endpoint_takes_only_an_empty_post_and_bounds_vault_reads(
    pool_bridge: Callable[..., tuple[Bridge, BootstrapConfig]], monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[float] = []
    real_read = bridge.pool.read_claim

    def counted(client: hvac.Client, config: BootstrapConfig) -> dict[str, Any] | None:
        reads.append(time.monotonic())
        return real_read(client, config)

    monkeypatch.setattr("bridge.agent.read_claim", counted)
    b, _ = pool_bridge()
    url = f"{b.base_url}/claim"
    wait_health(b.base_url, status="healthy")
    with httpx.Client(timeout=2.0) as http:
        refused = [
            http.post(url, content=b"{}"),
            http.post(url, json={"agent_id": "x"}),
            http.post(url, content=iter([b"chunked"])),
            http.get(url),
            http.put(url),
            http.post(f"{url}?now=1"),
            http.post(f"{b.base_url}/claims"),
        ]
        assert [r.status_code for r in refused] == [400, 400, 400, 404, 404, 404, 404]
        accepted = http.post(url)
        assert (accepted.status_code, accepted.json()) == (202, {})

        # A burst of pokes: the bridge reads its claim at most every MIN_CLAIM_READ_GAP_S.
        first = len(reads)
        start = time.monotonic()

        def burst() -> None:
            with httpx.Client(timeout=2.0) as other:
                for _ in range(60):
                    assert other.post(url).status_code == 202

        workers = [threading.Thread(target=burst) for _ in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(30)
        elapsed = time.monotonic() - start
    during = len(reads) - first
    assert 1 <= during <= elapsed / MIN_CLAIM_READ_GAP_S + 2, (during, elapsed)
    assert health(b.base_url).json()["status"] == "healthy"


def test_a_normal_bridge_has_no_claim_endpoint() -> None:
    server = HealthServer("127.0.0.1", 0, HealthState("a-1"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert httpx.post(f"{server.base_url}/claim", timeout=2.0).status_code == 404
        assert "pool" not in httpx.get(f"{server.base_url}/health", timeout=2.0).json()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize(
    ("agent_id", "body", "healthy"),
    [
        ("pv0123456789ab", {"pool": True, "secrets_loaded": 0}, True),
        ("pv0123456789ab", {"secrets_loaded": 0}, False),  # no secrets and not a pool VM
        ("pv0123456789ab", {"pool": "yes", "secrets_loaded": 0}, False),
        ("mailer-1", {"pool": True, "secrets_loaded": 0}, False),  # only a slot can be a waiting pool VM
        ("mailer-1", {"secrets_loaded": 3}, True),
    ],
)
def test_the_orchestrator_reads_a_waiting_pool_vm_as_healthy_only_for_a_slot(
    agent_id: str, body: dict[str, Any], healthy: bool
) -> None:
    resp = httpx.Response(200, json={"agent_id": agent_id, "status": "healthy", "reason": "", **body})
    assert parse_health(agent_id, resp).healthy is healthy


def test_the_shipped_bridge_runs_a_pool_vm(
    start_bridge: Callable[..., BridgeProcess],
    pools: PoolVault,
    vault: AgentVault,
    slot: str,
    agent: str,
    tmp_path: Path,
) -> None:
    pools.mint_pool_identity(slot)
    try:
        config = dataclasses.replace(
            pools.issue_pool_bootstrap(slot), address_file=str(tmp_path / "addr"), claim_poll_s=0.2
        )
        proc = start_bridge(config)
        code, body = proc.wait_status("healthy")
        assert (code, body["agent_id"], body["pool"]) == (200, slot, True)
        pools.deliver_claim(slot, vault.issue_bootstrap(agent))  # no poke: the bridge's own poll finds it

        def as_agent() -> dict[str, Any] | None:
            body = proc.health()[1]
            return body if body["agent_id"] == agent and body["status"] == "healthy" else None

        body = wait_for(as_agent, "the agent's /health")
        assert body["secrets_loaded"] == 2 and "pool" not in body
        assert proc.stop() == 0
        assert config.wrapped_secret_id not in proc.log()
    finally:
        pools.destroy_pool_identity(slot)


def test_a_claim_for_another_role_is_refused_without_unwrapping_it(
    pool_bridge: Callable[..., tuple[Bridge, BootstrapConfig]],
    pools: PoolVault,
    vault: AgentVault,
    root: hvac.Client,
    agent: str,
) -> None:
    b, _ = pool_bridge()
    wait_health(b.base_url, status="healthy")
    bootstrap = vault.issue_bootstrap(agent)
    pools.deliver_claim(b.config.pool_slot, dataclasses.replace(bootstrap, agent_id="someone-else"))
    b.poke()
    body = wait_health(b.base_url, status="unhealthy").json()
    assert body["reason"] == "claim rejected: expected_creation_path is not the agent's role"
    # Never unwrapped: still intact for its real owner.
    assert root.sys.unwrap(bootstrap.wrapped_secret_id)["data"]["secret_id"]
