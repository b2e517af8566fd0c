"""Representative executions of every workflow, run against the real stack to record their histories.

Each scenario drives one execution to its end, as the tests of the same behaviour do, and returns the workflow id
whose runs are saved. The order is the order of importance: what most running workflows look like comes first.
"""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from temporalio.client import WorkflowFailureError

from activities.cloud.base import CloudProvider
from activities.secrets.agent_data import AgentDataStore
from clients.client import AgentRefused
from cloudsim.testing import RunningSim
from contracts.approver_policy import ApproverChange
from contracts.identifiers import approval_id, workflow_id
from contracts.limits import LimitsChange
from contracts.maintenance_models import FleetHealthInput, RotationInput, SweepInput
from contracts.models import AgentState, AgentStatus, Decision, HealthChange, ToolApprovalInput
from contracts.pool import pool_workflow_id
from contracts.regions import CLOUD_PROVIDERS
from tests.stack import AGENTS, Stack, eventually
from workers.settings import WorkerSettings
from workers.worker import default_providers
from workflows.account_limits import AccountLimitsWorkflow
from workflows.approver_settings import ApproverSettingsWorkflow
from workflows.fleet_health import FleetHealthWorkflow
from workflows.key_rotation import KeyRotationWorkflow
from workflows.orphan_sweep import OrphanSweepWorkflow
from workflows.tool_approval import ToolApprovalWorkflow

__all__ = ["SCENARIOS", "Execution", "Scenario", "Stacks"]

# Room in the client-side API budget so a recording is not paced at one call per second (as tests/workflows/).
_FAST = {f"LOBSTACK_API_BUDGET_{name.upper()}": "200" for name in CLOUD_PROVIDERS}
_NEVER_HEALTHY = [sys.executable, str(AGENTS / "never_healthy.py")]


@dataclass
class Stacks:
    """What a scenario may run on: the usual stack, one on a server that suggests continue-as-new early, cloudsim."""

    stack: Stack
    short_history: Stack
    sim: RunningSim

    def clouds(self) -> dict[str, CloudProvider]:
        settings = WorkerSettings(home=self.stack.local.state_dir, providers=CLOUD_PROVIDERS)
        return dict(default_providers(settings, {**self.sim.env(), **_FAST}))


@dataclass(frozen=True)
class Execution:
    """The execution a scenario recorded, and the stack (so the Temporal server) it ran on."""

    stack: Stack
    workflow_id: str


Run = Callable[[Stacks], Awaitable[Execution]]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Run


SCENARIOS: list[Scenario] = []


def scenario(name: str) -> Callable[[Run], Run]:
    def register(run: Run) -> Run:
        SCENARIOS.append(Scenario(name, run))
        return run

    return register


async def _health(stack: Stack, agent_id: str, change: HealthChange) -> None:
    await stack.health_changed(agent_id, change)


async def _destroyed(stack: Stack, agent_id: str) -> None:
    await stack.client.destroy(agent_id, requested_by="bob", reason="recorded")
    await stack.client.result(agent_id)


# --- AgentLifecycle ---


@scenario("lifecycle_approved_destroyed")
async def _approved_destroyed(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.approve(agent_id, approver="alice", reason="ticket OPS-1")
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await stack.client.update_skills(agent_id, ["web.search", "email.send"], requested_by="alice")
        await _destroyed(stack, agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_rejected")
async def _rejected(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.reject(agent_id, approver="carol", reason="not needed")
        await stack.client.result(agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_never_healthy_failed_cleaned_up")
async def _failed(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers(stack.local_with(_NEVER_HEALTHY)):
        agent_id = await stack.client.create_agent(stack.spec(health_timeout_s=3))
        try:
            await stack.client.result(agent_id)
        except WorkflowFailureError:
            pass  # the expected end: failed after its cleanup ran
        else:
            raise AssertionError("a never-healthy agent must fail")
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_degraded_continued_as_new")
async def _continued(s: Stacks) -> Execution:
    stack = s.short_history
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=2))
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        first_run = (await handle.describe()).run_id
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await _health(stack, agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=1))
        await _health(stack, agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=2))
        await stack.client.wait_for(agent_id, {AgentState.DEGRADED}, timeout_s=30)

        async def new_run() -> str | None:
            # Skill updates grow the history until the server suggests continuing as new.
            current = (await handle.describe()).run_id
            if current != first_run:
                return current
            await stack.client.update_skills(agent_id, ["web.search"], requested_by="recorder")
            return None

        await eventually(new_run, timeout_s=60, what="a continue-as-new")
        await _health(stack, agent_id, HealthChange(True, "healthy"))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=30)
        await _destroyed(stack, agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_failover_capacity")
async def _failover(s: Stacks) -> Execution:
    stack, sim = s.stack, s.sim
    sim.set_faults(provider="hetzner", endpoint="create", capacity=True)
    try:
        async with stack.workers(providers=s.clouds()):
            agent_id = await stack.client.create_agent(stack.spec(provider="auto", region="eu-central"))
            running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
            assert running.provider == "digitalocean", f"expected a failover to digitalocean, got {running.provider}"
            await _destroyed(stack, agent_id)
    finally:
        sim.clear_faults()
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_unhealthy_replaced")
async def _replaced(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=1, replace_unhealthy=True))
        first = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await _health(stack, agent_id, HealthChange(False, "unhealthy", "bridge says so", consecutive_failures=1))

        async def replaced() -> AgentStatus | None:
            status = await stack.client.status(agent_id)
            fresh = status.state == AgentState.RUNNING and status.address != first.address
            return status if fresh else None

        await eventually(replaced, timeout_s=90, what="the replacement VM")
        await _destroyed(stack, agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_cancelled_provisioning")
async def _cancelled(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers(stack.local_with(_NEVER_HEALTHY)):
        agent_id = await stack.client.create_agent(stack.spec(health_timeout_s=120))

        async def vm_created() -> AgentStatus | None:
            status = await stack.client.status(agent_id)
            return status if status.vm_id else None

        await eventually(vm_created, timeout_s=30, what="the VM of the provisioning agent")
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.cancel()
        with contextlib.suppress(WorkflowFailureError):  # cancelled, after its cleanup ran
            await handle.result()
    return Execution(stack, workflow_id(agent_id))


# --- ToolApproval ---


async def _approval(stack: Stack, **overrides: Any) -> str:
    """Start a ToolApproval as the gateway does; returns its workflow id."""
    fields: dict[str, Any] = {
        "agent_id": f"t-{uuid.uuid4().hex[:12]}",
        "account_id": "acme",
        "request_id": uuid.uuid4().hex[:12],
        "tool": "email.send",
        "arguments": {"to": "ceo@example.com", "subject": "Q3"},
        "requested_by": "agent-x",
        "approvers": ["alice", "bob"],
    }
    fields.update(overrides)
    request = ToolApprovalInput(**fields)
    handle = await stack.temporal.start_workflow(
        ToolApprovalWorkflow.run,
        request,
        id=approval_id(request.agent_id, request.request_id),
        task_queue=stack.task_queue,
    )
    return handle.id


async def _decided(stack: Stack, approval: str, signal: Any, decision: Decision) -> Execution:
    handle = stack.temporal.get_workflow_handle(approval)
    await handle.signal(signal, decision)
    await handle.result()
    return Execution(stack, approval)


@scenario("approval_approved")
async def _approval_approved(s: Stacks) -> Execution:
    async with s.stack.workers():
        approval = await _approval(s.stack)
        # A placeholder approver is refused (and audited) before alice decides.
        refused = Decision(approver="mallory", reason="me too")
        await s.stack.temporal.get_workflow_handle(approval).signal(ToolApprovalWorkflow.approve, refused)
        return await _decided(s.stack, approval, ToolApprovalWorkflow.approve, Decision("alice", "expected mail"))


@scenario("approval_rejected")
async def _approval_rejected(s: Stacks) -> Execution:
    async with s.stack.workers():
        approval = await _approval(s.stack)
        return await _decided(s.stack, approval, ToolApprovalWorkflow.reject, Decision("bob", "no"))


@scenario("approval_expired")
async def _approval_expired(s: Stacks) -> Execution:
    async with s.stack.workers():
        approval = await _approval(s.stack, timeout_s=1)
        await s.stack.temporal.get_workflow_handle(approval).result()
        return Execution(s.stack, approval)


@scenario("approval_escalated_approved")
async def _approval_escalated(s: Stacks) -> Execution:
    async with s.stack.workers():
        approval = await _approval(s.stack, timeout_s=1, escalation_approvers=["cto"], escalation_timeout_s=600)
        handle = s.stack.temporal.get_workflow_handle(approval)

        async def escalated() -> bool | None:
            return True if (await handle.query(ToolApprovalWorkflow.status)).escalated else None

        await eventually(escalated, timeout_s=30, what="the escalation")
        return await _decided(s.stack, approval, ToolApprovalWorkflow.approve, Decision("cto", "escalated ok"))


# --- maintenance ---


async def _run_now(stack: Stack, run: Any, arg: object, kind: str) -> Execution:
    """Execute a maintenance workflow now on the stack's queue, as the CLI does."""
    workflow = f"recorded-{kind}-{uuid.uuid4().hex[:10]}"
    await stack.temporal.execute_workflow(run, arg, id=workflow, task_queue=stack.task_queue)
    return Execution(stack, workflow)


@scenario("key_rotation")
async def _key_rotation(s: Stacks) -> Execution:
    stack = s.stack
    data = AgentDataStore(stack.vault, stack.registry)
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        data.put(agent_id, "acme", "config.json", b'{"tone": "formal"}')
        rotation = await _run_now(stack, KeyRotationWorkflow.run, RotationInput(batch_size=2), "rotate")
        await _destroyed(stack, agent_id)
    return rotation


@scenario("orphan_sweep")
async def _orphan_sweep(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        dead = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(dead, {AgentState.RUNNING}, timeout_s=60)
        await stack.temporal.get_workflow_handle(workflow_id(dead)).terminate(reason="recorder: no cleanup")
        return await _run_now(stack, OrphanSweepWorkflow.run, SweepInput(), "sweep")


@scenario("fleet_health")
async def _fleet_health(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        healthy = await stack.client.create_agent(stack.spec())
        await stack.client.wait_for(healthy, {AgentState.RUNNING}, timeout_s=60)
        failing = await stack.client.create_agent(stack.spec(unhealthy_threshold=1))
        await stack.client.wait_for(failing, {AgentState.RUNNING}, timeout_s=60)
        vm = stack.local.pid_of(failing)
        assert vm is not None
        stack.local.delete(f"local-{failing}")  # the VM is gone without its lifecycle knowing
        fleet = await _run_now(stack, FleetHealthWorkflow.run, FleetHealthInput(), "health")
        for agent_id in (healthy, failing):
            await _destroyed(stack, agent_id)
    return fleet


@scenario("approver_settings")
async def _approver_settings(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        change = ApproverChange(account_id="acme", action="add", name="dana", four_eyes=True)
        return await _run_now(stack, ApproverSettingsWorkflow.run, change, "approvers")


@scenario("lifecycle_account_two_approvals")
async def _account_two_approvals(s: Stacks) -> Execution:
    """The account's policy read at each decision (patch account-approvers): a refused non-approver, the first of
    two approvals by signal, the second by update, each with the caller identity read from history."""
    stack = s.stack
    async with stack.workers():
        change = ApproverChange(account_id="acme", action="policy", two_approvals_sizes=["large"], four_eyes=True)
        await stack.client.change_approvers(change)
        agent_id = await stack.client.create_agent(
            stack.spec(require_approval=True, size="large"), requested_by="carol"
        )
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.signal("approve", {"approver": "mallory", "reason": "me too"})
        await handle.signal("approve", {"approver": "alice", "reason": "first"})
        await stack.client.approve(agent_id, approver="bob", reason="second")
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await _destroyed(stack, agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("approval_account_approvers")
async def _approval_account_approvers(s: Stacks) -> Execution:
    """A tool request with no list of its own: the account's approvers decide, read at decision time."""
    async with s.stack.workers():
        approval = await _approval(s.stack, approvers=[])
        refused = Decision(approver="mallory", reason="me too")
        await s.stack.temporal.get_workflow_handle(approval).signal(ToolApprovalWorkflow.approve, refused)
        await s.stack.client.decide_approval(approval, approver="bob", approved=True, reason="expected mail")
        await s.stack.temporal.get_workflow_handle(approval).result()
        return Execution(s.stack, approval)


@scenario("account_limits")
async def _account_limits(s: Stacks) -> Execution:
    stack = s.stack
    async with stack.workers():
        change = LimitsChange(account_id="acme", action="set", max_agents=5, default_idle_timeout_s=3600)
        return await _run_now(stack, AccountLimitsWorkflow.run, change, "limits")


@scenario("lifecycle_quota_refused")
async def _quota_refused(s: Stacks) -> Execution:
    """Admission (patch account-limits): the account's quota is full, so the create is refused with nothing made."""
    stack = s.stack
    async with stack.workers():
        await stack.client.change_limits(LimitsChange(account_id="acme", action="set", max_agents=1))
        first = await stack.client.create_agent(stack.spec())
        refused = stack.spec()
        with contextlib.suppress(AgentRefused):
            await stack.client.create_agent(refused)
        await stack.client.result(refused.agent_id)
        await _destroyed(stack, first)
    return Execution(stack, workflow_id(refused.agent_id))


@scenario("lifecycle_idle_destroyed")
async def _idle_destroyed(s: Stacks) -> Execution:
    """Admitted with lifetimes (patch account-limits): the idle checks, the warning, then lobstack destroys it."""
    stack = s.stack
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(idle_timeout_s=60, max_lifetime_s=7200))
        await stack.client.result(agent_id)
    return Execution(stack, workflow_id(agent_id))


@scenario("lifecycle_cloud_firewall")
async def _cloud_firewall(s: Stacks) -> Execution:
    """An agent on a cloud with its own firewall (patch agent-firewall), admitted within the account's limits: the
    firewall made before the VM, attached at create, deleted and verified gone after the VM."""
    stack = s.stack
    async with stack.workers(providers=s.clouds()):
        agent_id = await stack.client.create_agent(stack.spec(provider="hetzner", region="eu-north"))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=120)
        await _destroyed(stack, agent_id)
    return Execution(stack, workflow_id(agent_id))


# --- WarmPool ---


async def _pooled_agent(s: Stacks) -> tuple[str, str]:
    """A pool of one on hetzner fills, an agent claims its VM (patch warm-pool) and is destroyed, the pool is deleted:
    the lifecycle's id and the pool's."""
    stack = s.stack
    where = ("hetzner", "eu-central", "small")
    async with stack.workers(providers=s.clouds(), vm_boot_s={"hetzner": 0.3}):
        await stack.client.set_pool(*where, min=1, max=1)

        async def ready() -> bool | None:
            return True if (await stack.client.pool_status(*where)).ready else None

        await eventually(ready, timeout_s=90, what="a ready pool VM")
        agent_id = await stack.client.create_agent(stack.spec(provider="hetzner", region="eu-central", size="small"))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await _destroyed(stack, agent_id)
        await stack.client.delete_pool(*where)
    return workflow_id(agent_id), pool_workflow_id(*where)


@scenario("lifecycle_warm_pool_claim")
async def _warm_pool_claim(s: Stacks) -> Execution:
    """An agent whose VM came from a warm pool: claimed, adopted, its credential delivered to the pool VM's bridge."""
    lifecycle, _ = await _pooled_agent(s)
    return Execution(s.stack, lifecycle)


@scenario("lifecycle_warm_pool_claim_with_mint")
async def _warm_pool_claim_with_mint(s: Stacks) -> Execution:
    """The same with patch claim-with-mint: the claim and the firewall alongside the mint, the delivery alongside
    its audit record."""
    lifecycle, _ = await _pooled_agent(s)
    return Execution(s.stack, lifecycle)


@scenario("warm_pool_filled_claimed_deleted")
async def _warm_pool(s: Stacks) -> Execution:
    """A WarmPool: filled, one VM claimed and replaced, then deleted with everything verified gone."""
    _, pool = await _pooled_agent(s)
    return Execution(s.stack, pool)
