"""The bridge's two listeners: /health for the orchestrator on the network, the agent API on a Unix socket only the
agent's user can use. Every route is called the ways an outsider could: from another host (a network namespace across a
veth link), as another user, and as root (past the file mode, not past the peer check)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import stat
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from activities.secrets import AgentVault
from bridge.config import BootstrapConfig
from devstack import free_port
from tests.bridge.conftest import BridgeProcess
from tests.bridge.support import Listeners, agent_api, listeners, other_host, privileged, probe
from tests.gateway.support import eventually, live
from tests.stack import AGENTS, Stack

# Every method the agent API's routes could be asked with, FOO for one no server knows.
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "FOO")
REMOTE_ASK = {"request_id": "remote1", "arguments": {"to": "someone@example.com", "body": "wire the money"}}
# The agent API's routes (the gated tool with a short wait, so an old bridge answers "pending" at once), and paths
# next to them.
AGENT_PATHS = (
    "/tools/email.send/authorize?wait=0.2",
    "/tools/web.search/authorize",
    "/tools/email.send/authorize/",
    "/tools",
    "/",
)
AGENT_ROUTE_CALLS = [(method, path, REMOTE_ASK) for method in METHODS for path in AGENT_PATHS]
NOT_FOUND = {"status": 404, "body": {"error": "not found"}}
NOT_FOUND_HEAD = {"status": 404, "body": None}  # a HEAD answer has no body


def not_found(method: str) -> dict[str, object]:
    return NOT_FOUND_HEAD if method == "HEAD" else NOT_FOUND


def configured(config: BootstrapConfig, **fields: object) -> BootstrapConfig:
    """The config with these fields, read back from JSON as a bridge reads it (a field it does not know is dropped)."""
    return BootstrapConfig.from_json(json.dumps({**dataclasses.asdict(config), **fields}))


def unreachable_vault_config(agent_id: str, tmp_path: Path, **fields: object) -> BootstrapConfig:
    """A bridge that stays "starting" (nothing listens at its Vault), enough to exercise its listeners."""
    config = BootstrapConfig(
        agent_id=agent_id,
        vault_addr=f"http://127.0.0.1:{free_port()}",
        role_id="role",
        wrapped_secret_id="s.NeverUsed",
        expected_creation_path=f"auth/approle/role/agent-{agent_id}/secret-id",
        address_file=str(tmp_path / "bridge.addr"),
    )
    return configured(config, **fields)


async def test_from_another_host_a_bridge_answers_health_only_and_no_approval_starts(
    stack: Stack, bridge_python: Path
) -> None:
    """Issue 20's attack, replayed: a VM's bridge (listening on every interface, as cloud-init sets it up) is called
    from another network namespace, across a veth link, on every agent route. Only /health answers; nothing is asked
    of anyone. The agent's own process, on the socket, still gets its approval started."""
    with other_host() as host:
        vm_like = stack.local_with([str(bridge_python), "-I", str(AGENTS / "vm_bridge.py")])
        async with live(stack, gateway_in_bootstrap=True, local=vm_like) as env:
            agent_id = await env.agent(skills=["web.search", "email.send"], approvers=["alice"])
            address = (await stack.client.status(agent_id)).address
            async with httpx.AsyncClient(base_url=address, timeout=10) as health:

                async def skills_loaded() -> bool:
                    return (await health.get("/health")).json().get("skills_version") is not None

                # Skills loaded: an old bridge would now start an approval for email.send.
                await eventually(skills_loaded, within=10, what="skills on the bridge")

            remote = f"http://{host.host_ip}:{urlsplit(address).port}"
            # In a thread: the gateway serves from this test's event loop.
            answers = await asyncio.to_thread(host.probe, remote, [("GET", "/health", None), *AGENT_ROUTE_CALLS])
            assert answers[0]["status"] == 200
            assert answers[0]["body"]["agent_id"] == agent_id and answers[0]["body"]["status"] == "healthy"
            for (method, path, _), answer in zip(AGENT_ROUTE_CALLS, answers[1:], strict=True):
                assert answer == not_found(method), (method, path, answer)

            approvals = f"WorkflowType = 'ToolApproval' AND WorkflowId STARTS_WITH 'approval-{agent_id}-'"
            assert (await stack.temporal.count_workflows(approvals)).count == 0

            # The kernel's view of the bridge: one TCP listener (health, every interface), one Unix socket (the API).
            pid = vm_like.pid_of(agent_id)
            assert pid is not None
            socket_path = vm_like.agent_socket(agent_id)
            port = urlsplit(address).port
            assert listeners(pid) == Listeners(tcp=frozenset({("0.0.0.0", port)}), unix=frozenset({str(socket_path)}))

            # The agent's own process, on the socket, is answered: its ask starts the one approval.
            async with agent_api(socket_path) as api:
                resp = await api.post("/tools/email.send/authorize", json={"request_id": "mail1"}, params={"wait": 0.2})
            assert (resp.status_code, resp.json()["state"]) == (202, "pending")
            assert (await stack.temporal.count_workflows(approvals)).count == 1


def test_the_health_listener_serves_health_only_and_the_agent_api_is_a_socket_of_the_agent_user(
    agent_id: str, tmp_path: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """No privilege needed: on loopback, every agent route on the health listener is 404; the agent API is a 0600
    socket of the bridge's own user (the local provider's agent user), and the bridge listens on nothing else."""
    socket_path = tmp_path / "agent.sock"
    proc = start_bridge(
        unreachable_vault_config(agent_id, tmp_path, agent_socket=str(socket_path)), "--retry-for", "60"
    )
    url = proc.base_url()
    answers = probe(url, [("GET", "/health", None), *AGENT_ROUTE_CALLS])
    assert (answers[0]["status"], answers[0]["body"]["status"]) == (503, "starting")
    for (method, path, _), answer in zip(AGENT_ROUTE_CALLS, answers[1:], strict=True):
        assert answer == not_found(method), (method, path, answer)

    found = os.lstat(socket_path)
    assert stat.S_ISSOCK(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o600 and found.st_uid == os.geteuid()
    assert listeners(proc.popen.pid) == Listeners(
        tcp=frozenset({("127.0.0.1", urlsplit(url).port)}), unix=frozenset({str(socket_path)})
    )
    # The agent's own user is answered; the health route is not the agent API's.
    own = probe(f"unix:{socket_path}", [("POST", "/tools/web.search/authorize", {}), ("GET", "/health", None)])
    assert own == [{"status": 403, "body": {"allowed": False, "reason": "tool not enabled"}}, NOT_FOUND]
    proc.stop()
    assert not socket_path.exists()  # a stopped bridge removes its socket


AGENT_UID = 47011  # the agent's user; any uid works, it needs no account
OTHER_UID = 47012
REFUSED = {"status": 403, "body": {"allowed": False, "reason": "caller is not the agent's user"}}


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory other users can pass through (pytest's own are root-only), as /run is on a VM."""
    directory = Path(tempfile.mkdtemp(prefix="lobstack-agent-api-", dir="/tmp"))
    directory.chmod(0o755)
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_the_agent_api_answers_the_agent_user_only(
    tmp_path: Path, shared_dir: Path, start_bridge: Callable[..., BridgeProcess]
) -> None:
    """The bridge runs as root and serves uid AGENT_UID, as on a VM. Another user cannot even connect (the socket is
    0600 and the agent user's); root can connect, and is refused by the peer-credential check on every route; the
    agent's user reaches the tool policy."""
    if os.geteuid() != 0:
        privileged("run the bridge as root and call it as other users")
    socket_path = shared_dir / "run" / "agent.sock"
    agent_id = f"b-{uuid.uuid4().hex[:12]}"
    config = unreachable_vault_config(agent_id, tmp_path, agent_socket=str(socket_path), agent_user=str(AGENT_UID))
    proc = start_bridge(config, "--retry-for", "60")
    proc.base_url()  # written once both listeners are up

    found = os.lstat(socket_path)
    assert stat.S_ISSOCK(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o600 and found.st_uid == AGENT_UID
    calls = [("GET", "/health", None), *AGENT_ROUTE_CALLS]
    target = f"unix:{socket_path}"

    assert probe(target, calls, as_uid=OTHER_UID) == [{"error": "PermissionError EACCES"}] * len(calls)
    for (method, path, _), answer in zip(calls, probe(target, calls), strict=True):  # as root
        assert answer == (REFUSED if method != "HEAD" else {**REFUSED, "body": None}), (method, path, answer)

    as_agent = probe(target, [("POST", "/tools/web.search/authorize", {}), ("GET", "/health", None)], as_uid=AGENT_UID)
    # No gateway configured: the call reached the tool policy, which enables nothing.
    assert as_agent == [{"status": 403, "body": {"allowed": False, "reason": "tool not enabled"}}, NOT_FOUND]
    assert "agent API refused POST /tools/email.send/authorize?wait=0.2 from pid" in proc.log()


@pytest.mark.parametrize("where", ["a directory others can write", "a path too long for a socket"])
def test_an_agent_socket_it_cannot_serve_safely_leaves_the_bridge_unhealthy_and_its_credential_unused(
    bridge_vault: AgentVault,
    agent_id: str,
    tmp_path: Path,
    shared_dir: Path,
    start_bridge: Callable[..., BridgeProcess],
    where: str,
) -> None:
    if where == "a directory others can write":
        shared_dir.chmod(0o777)  # anyone could put their own socket in its place
        socket_path, reason = shared_dir / "agent.sock", "no one else can write"
    else:
        socket_path, reason = tmp_path / ("d" * 100) / "agent.sock", "a Unix socket path holds at most 107"
    bridge_vault.mint(agent_id)
    config = configured(
        bridge_vault.issue_bootstrap(agent_id, address_file=str(tmp_path / "first.addr")), agent_socket=str(socket_path)
    )
    first = start_bridge(config, name="first")
    code, body = first.wait_status("unhealthy")
    assert (
        code == 503 and body["reason"].startswith("agent API not served: agent_socket: ") and reason in body["reason"]
    )
    assert not socket_path.exists()

    # The bootstrap credential was left alone: the same config with a safe socket introduces itself.
    good = configured(config, agent_socket=str(tmp_path / "agent.sock"), address_file=str(tmp_path / "second.addr"))
    second = start_bridge(good, name="second")
    assert second.wait_status("healthy")[0] == 200
    assert first.stop() == 0 and second.stop() == 0
    bridge_vault.destroy(agent_id)
