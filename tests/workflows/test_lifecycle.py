"""AgentLifecycle end to end on the Temporal dev server, real OpenBao, a real registry and real agent processes."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError, CancelledError

from activities.cloud.local import pid_alive
from clients.client import AgentExists, DecisionRefused
from contracts.identifiers import workflow_id
from contracts.models import AgentState, AgentStatus, Residue
from tests.stack import Stack

pytestmark = pytest.mark.asyncio(loop_scope="session")


def assert_nothing_left(stack: Stack, agent_id: str, pid: int | None = None) -> None:
    residue = stack.vault.residue(agent_id)
    assert residue == Residue(), f"vault residue of {agent_id}: {residue}"
    assert stack.vms_of(agent_id) == 0
    if pid is not None:
        assert not pid_alive(pid), f"agent process {pid} still alive"


def actions(stack: Stack, agent_id: str) -> list[str]:
    return [event.action for event in stack.registry.events(agent_id=agent_id)]


async def test_full_lifecycle_with_approval(stack_any_db: Stack) -> None:
    stack = stack_any_db
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        pending = await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        assert "signal `approve`" in pending.waiting_for and '"approver"' in pending.waiting_for
        assert stack.vms_of(agent_id) == 0, "nothing may be created before the approval"

        await stack.client.approve(agent_id, approver="alice", reason="ticket OPS-1")
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        assert running.health == "healthy" and running.approved_by == "alice"
        assert running.vm_id == f"local-{agent_id}" and running.address.startswith("http://127.0.0.1:")
        assert "signal `destroy`" in running.waiting_for
        async with httpx.AsyncClient() as http:
            health = (await http.get(f"{running.address}/health")).json()
        assert health["agent_id"] == agent_id and health["status"] == "healthy" and health["secrets_loaded"] >= 1
        pid = stack.local.pid_of(agent_id)
        assert pid is not None and pid_alive(pid)

        row = stack.registry.get(agent_id)
        assert row is not None and row.state == "running" and row.vm_id == running.vm_id

        await stack.client.destroy(agent_id, requested_by="bob", reason="done")
        result = await stack.client.result(agent_id)
        final = await stack.client.status(agent_id)  # a closed workflow answers queries through a worker
    assert result.state == AgentState.DESTROYED
    assert_nothing_left(stack, agent_id, pid)
    assert final.state == AgentState.DESTROYED and final.finished_at is not None
    row = stack.registry.get(agent_id)
    assert row is not None and row.state == "destroyed"
    trail = actions(stack, agent_id)
    assert trail[0] == "agent.requested" and trail[-1] == "agent.destroyed"
    for expected in (
        "agent.approved",
        "secrets.minted",
        "vm.created",
        "agent.running",
        "vm.deleted",
        "secrets.deleted",
    ):
        assert expected in trail
    approved = next(e for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.approved")
    assert (approved.actor, approved.reason) == ("alice", "ticket OPS-1")


async def test_history_holds_no_secret_value(stack: Stack) -> None:
    spec = stack.spec()
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        minted = stack.secret_values(agent_id)
        assert minted, "the agent must have secrets for this test to mean anything"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    history = await stack.temporal.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    raw = history.to_json()
    decoded = "\n".join(_payload_texts(json.loads(raw)))
    assert agent_id in decoded, "payload decoding found nothing: the check would be vacuous"
    for value in [*minted, stack.vault.settings.token]:
        assert value not in raw and value not in decoded


def _payload_texts(node: object) -> list[str]:
    """Every payload's data, base64-decoded: raw history JSON encodes payloads, so a plain search is not enough."""
    found: list[str] = []
    if isinstance(node, dict):
        if "data" in node and "metadata" in node and isinstance(node["data"], str):
            found.append(base64.b64decode(node["data"]).decode(errors="replace"))
        for value in node.values():
            found.extend(_payload_texts(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(_payload_texts(value))
    return found


async def test_rejected_agent_creates_nothing(stack: Stack) -> None:
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        await stack.client.reject(agent_id, approver="carol", reason="not needed")
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.REJECTED and "carol" in result.reason
    assert_nothing_left(stack, agent_id)
    rejected = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.rejected"]
    assert [(e.actor, e.reason) for e in rejected] == [("carol", "not needed")]


async def test_health_never_passes_cleans_up_and_fails(stack: Stack, never_healthy_argv: list[str]) -> None:
    spec = stack.spec(health_timeout_s=3)
    async with stack.workers(stack.local_with(never_healthy_argv)):
        agent_id = await stack.client.create_agent(spec)
        with pytest.raises(WorkflowFailureError) as failure:
            await stack.client.result(agent_id)
        status = await stack.client.status(agent_id)
    assert isinstance(failure.value.cause, ApplicationError) and failure.value.cause.type == "AgentFailed"
    assert status.state == AgentState.FAILED
    assert "not healthy by its deadline" in status.last_error
    assert_nothing_left(stack, agent_id)
    assert stack.secret_values(agent_id) == []
    assert actions(stack, agent_id)[-1] == "agent.failed"


async def test_cancel_during_provisioning_cleans_up(stack: Stack, gated_argv: tuple[list[str], Path]) -> None:
    argv, _gate = gated_argv
    spec = stack.spec()
    async with stack.workers(stack.local_with(argv)):
        agent_id = await stack.client.create_agent(spec)
        booting = await _wait_vm_created(stack, agent_id)
        pid = stack.local.pid_of(agent_id)
        assert booting.state == AgentState.PROVISIONING and pid is not None
        assert stack.vault.residue(agent_id).roles == 2, "secrets exist before the cancel"  # AppRole and PKI roles

        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        status = await stack.client.status(agent_id)
    assert isinstance(failure.value.cause, CancelledError)
    assert status.state == AgentState.DESTROYED
    assert_nothing_left(stack, agent_id, pid)


async def test_destroy_signal_during_provisioning_cleans_up(stack: Stack, gated_argv: tuple[list[str], Path]) -> None:
    argv, _gate = gated_argv
    async with stack.workers(stack.local_with(argv)):
        agent_id = await stack.client.create_agent(stack.spec())
        await _wait_vm_created(stack, agent_id)
        pid = stack.local.pid_of(agent_id)
        await stack.client.destroy(agent_id, requested_by="dave")
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.DESTROYED
    assert_nothing_left(stack, agent_id, pid)


async def test_worker_restart_mid_provisioning_makes_exactly_one_vm(
    stack: Stack, gated_argv: tuple[list[str], Path]
) -> None:
    argv, gate = gated_argv
    async with stack.workers(stack.local_with(argv)):
        agent_id = await stack.client.create_agent(stack.spec())
        await _wait_vm_created(stack, agent_id)
        first_pid = stack.local.pid_of(agent_id)
    # The first worker is gone while the VM boots; a fresh one, with fresh provider objects, takes over.
    async with stack.workers(stack.local_with(argv)):
        await asyncio.to_thread(_open_gate, gate)
        running = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=90)
        assert stack.vms_of(agent_id) == 1
        assert stack.local.pid_of(agent_id) == first_pid
        vm_created = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "vm.created"]
        assert len(vm_created) == 1 and vm_created[0].details["vm_id"] == running.vm_id
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert_nothing_left(stack, agent_id, first_pid)


async def test_duplicate_agent_id_is_refused(stack: Stack) -> None:
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        await stack.client.create_agent(spec)
        with pytest.raises(AgentExists, match="agent_id"):
            await stack.client.create_agent(spec)
        await stack.client.reject(spec.agent_id, approver="erin")
        await stack.client.result(spec.agent_id)
        with pytest.raises(AgentExists):
            await stack.client.create_agent(spec)


async def test_workflow_refuses_an_invalid_spec_started_directly(stack: Stack) -> None:
    from contracts.models import LifecycleInput
    from workflows.agent_lifecycle import AgentLifecycleWorkflow

    spec = stack.spec(region="mars")
    async with stack.workers():
        handle = await stack.temporal.start_workflow(
            AgentLifecycleWorkflow.run,
            LifecycleInput(spec=spec),
            id=workflow_id(spec.agent_id),
            task_queue=stack.task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidSpec" and "region" in str(cause)
    assert stack.registry.get(spec.agent_id) is None
    assert_nothing_left(stack, spec.agent_id)


async def _wait_vm_created(stack: Stack, agent_id: str) -> AgentStatus:
    """Until the status shows a VM id: the VM exists (its process waits at the boot gate)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        status = await stack.client.status(agent_id)
        if status.vm_id:
            return status
        assert asyncio.get_running_loop().time() < deadline, f"no VM after 30s: {status}"
        await asyncio.sleep(0.05)


def _open_gate(gate: Path) -> None:
    with gate.open("wb") as fifo:
        fifo.write(b"boot")


async def test_decision_sent_with_the_start_is_not_lost(stack: Stack) -> None:
    """A signal can reach the workflow in its very first task, before `run` starts: it must still count."""
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.reject(agent_id, approver="gina", reason="changed my mind")
        result = await stack.client.result(agent_id)
    assert result.state == AgentState.REJECTED and "gina" in result.reason


async def test_cancel_while_pending_approval_records_the_end(stack: Stack) -> None:
    spec = stack.spec(require_approval=True)
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    row = stack.registry.get(agent_id)
    assert row is not None and row.state == "rejected"
    # The cancel may land before or after the request was recorded; its end is always recorded.
    assert actions(stack, agent_id)[-1] == "agent.cancelled"
    assert_nothing_left(stack, agent_id)


async def test_only_configured_approvers_decide_and_refusals_are_audited(stack: Stack) -> None:
    spec = stack.spec(require_approval=True, approvers=["alice"])
    async with stack.workers():
        agent_id = await stack.client.create_agent(spec)
        with pytest.raises(DecisionRefused, match=r"not an allowed approver here \(allowed: "):
            await stack.client.approve(agent_id, approver="mallory", reason="let me in")
        # The Web UI's path: a signal. Refused the same way, and it cannot answer, so it is audited and kept waiting.
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.signal("approve", {"approver": "eve", "reason": "me too"})
        status = await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=10)
        assert status.state == AgentState.PENDING_APPROVAL
        approved = await stack.client.approve(agent_id, approver="alice", reason="ok")
        assert approved.approved_by == "alice"
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    refused = [(e.actor, e.action) for e in stack.registry.events(agent_id=agent_id) if "refused" in e.action]
    # mallory's update was refused by its validator, before history: she heard why, and only the signal is audited.
    assert refused == [("eve", "agent.approval_refused")]
