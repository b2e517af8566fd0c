"""`make demo`: one agent's whole life on the embedded defaults, checked at the end.

Starts Temporal (dev server + Web UI), OpenBao and a worker; creates an agent that needs approval, approves it as an
approver would (a signal), waits until it is healthy, destroys it, then checks that its process is gone and OpenBao
holds nothing of it, and that no firewall of it is left on the simulated cloud. Prints one `demo ok: ...` line and
exits 0, or says what was left and exits 1.

With `pool=True` (`make demo POOL=1`) a warm pool of one VM is filled first, the agent's VM is claimed from it, and the
time from approval to healthy is printed; the pool is deleted at the end and its VMs and identities count as left.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import httpx

from activities.cloud.base import vm_name
from activities.cloud.local import pid_alive
from activities.secrets.pool_vault import PoolVault
from clients.client import LobstackClient
from contracts.firewall import firewall_description
from contracts.models import AgentState
from contracts.pool import POOL_LABEL, POOL_PROVIDERS
from contracts.spec import AgentSpec
from devstack.stack import dev_stack

_T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - _T0:6.2f}s] {text}", flush=True)


async def run_demo(*, provider: str = "local", pool: bool = False) -> int:
    home = Path(tempfile.mkdtemp(prefix="lobstack-demo-"))
    if pool and provider not in POOL_PROVIDERS:
        say(f"warm pools run on {' and '.join(POOL_PROVIDERS)}, not {provider}: this demo uses hetzner (cloudsim)")
        provider = "hetzner"
    try:
        return await _demo(home, provider, pool)
    finally:
        shutil.rmtree(home, ignore_errors=True)


async def _demo(home: Path, provider: str, pool: bool) -> int:
    say("starting Temporal dev server, OpenBao and a worker ...")
    async with dev_stack(home) as stack:
        say(f"Temporal Web UI at {stack.temporal.ui_url}; OpenBao at {stack.openbao.addr}")
        say(f"cloudsim (Hetzner, DigitalOcean, Vultr APIs) at {stack.cloudsim.url}")
        client = LobstackClient(stack.client)
        # Only an account's approvers decide: the operator names them first (`lobstack approvers add`).
        await client.add_approver("demo-account", "demo-approver")
        say("demo-approver is an approver of demo-account")
        if pool:
            await client.set_pool(provider, "eu-central", "small", min=1, max=1)
            say(f"warm pool {provider}/eu-central/small started (min 1): its VM boots with no agent identity ...")
            pooled = await _until_ready(client, provider)
            say(f"warm pool ready: VM {pooled} answers /health with its pool identity, waiting for a claim")
        spec = AgentSpec(
            account_id="demo-account",
            name="mailer",
            provider=provider,
            region="eu-central",
            size="small",
            skills=["web.search", "email.send"],
            require_approval=True,
            health_timeout_s=120,
        )
        agent_id = await client.create_agent(spec)
        say(f"created agent {agent_id} (workflow agent-{agent_id})")

        status = await client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        say(f"state {status.state.value}: {status.waiting_for}")
        approved_at = time.monotonic()
        await client.approve(agent_id, approver="demo-approver", reason="demo run")
        say("approved as demo-approver (the CLI's `decide` update; the Web UI sends the `approve` signal)")

        # Looked at every 50 ms: the time printed is the claim's, not the polling's (a second's backoff otherwise).
        status = await client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=150, max_interval_s=0.05)
        claim_s = time.monotonic() - approved_at
        if pool:
            say(f"started from {status.started_from}: claim to healthy in {claim_s:.2f} s (from the approval)")
        say(
            f"state {status.state.value}: VM {status.vm_id} on {status.provider}/{status.location or '-'} at "
            f"{status.address}, health {status.health}"
        )
        async with httpx.AsyncClient(timeout=5) as http:
            health = (await http.get(f"{status.address}/health")).json()
        say(f"bridge /health: {health}")
        pid = stack.local.pid_of(agent_id)

        await client.destroy(agent_id, requested_by="demo", reason="demo finished")
        result = await client.result(agent_id)
        say(
            f"state {result.state.value} after {result.api_calls} provider API calls for its VM and "
            f"{result.firewall_calls} for its firewall"
        )

        # Counted independently of the adapters: the simulator's own state, and the local process table.
        name = vm_name(agent_id)
        sim_vms = [vm for vm in stack.cloudsim.state()["vms"] if vm["name"] == name]
        vms = stack.vms_of(agent_id) + len(sim_vms)
        vms += 1 if pid is not None and pid_alive(pid) else 0
        residue = stack.vault.residue(agent_id)
        residue.vms = vms
        # Its firewall (cloud providers only): named like its VM, or described `lobstack-agent=<id>` on Vultr.
        ours = {name, firewall_description(agent_id)}
        state = stack.cloudsim.state()
        residue.firewalls = sum(1 for f in state["firewalls"] if f["name"] in ours or f["description"] in ours)
        if pool:
            await client.delete_pool(provider, "eu-central", "small")
            # The pool's VMs carry its label (Hetzner) or tag (Vultr); its identities are roles in OpenBao.
            left_vms = [
                vm
                for vm in stack.cloudsim.state()["vms"]
                if POOL_LABEL in (vm.get("labels") or {}) or any(t.startswith(POOL_LABEL) for t in vm.get("tags") or [])
            ]
            residue.vms += len(left_vms)
            pools = PoolVault(stack.vault.settings)
            for slot in pools.list_pool_slots():
                found = pools.pool_residue(slot)
                residue.secrets += found.secrets
                residue.policies += found.policies
                residue.roles += found.roles
                residue.tokens += found.tokens
            say(f"warm pool deleted: {len(left_vms)} of its VMs and {len(pools.list_pool_slots())} identities left")
    say("stopped Temporal, OpenBao and the worker")
    left = (
        f"{residue.vms} VMs, {residue.secrets} secrets, {residue.policies} policies, {residue.roles} roles, "
        f"{residue.keys} keys, {residue.tokens} tokens, {residue.firewalls} firewalls"
    )
    if result.state != AgentState.DESTROYED or residue.total:
        print(f"demo FAILED: agent {agent_id} ended {result.state.value}; left behind: {left}", file=sys.stderr)
        return 1
    # The leftover count ends the line, so what was left is the last thing read.
    calls = (
        f" after {result.api_calls} API calls (+{result.firewall_calls} for its firewall)"
        if provider != "local"
        else ""
    )
    warm = f" from a warm pool, claim to healthy {claim_s:.2f} s," if pool else ""
    print(f"demo ok: agent {agent_id}{warm} destroyed{calls}; left behind: {left}")
    return 0


async def _until_ready(client: LobstackClient, provider: str, timeout_s: float = 120) -> str:
    """The id of the pool's first ready VM, once it has one."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await client.pool_status(provider, "eu-central", "small")
        ready = [vm.vm_id for vm in status.vms if vm.status == "ready"]
        if ready:
            return ready[0]
        if time.monotonic() > deadline:
            raise TimeoutError(f"warm pool not ready in {timeout_s:.0f}s: {status.last_error or 'still booting'}")
        await asyncio.sleep(0.5)
