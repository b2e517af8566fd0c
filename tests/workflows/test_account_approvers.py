"""Approvers per account (issue 13, item 3): kept in the registry, enforced by the workflows at decision time.

On SQLite and PostgreSQL registries, with the real dev server, OpenBao and local VMs: the client refuses an agent no
one could approve; a spec only narrows the account's list; a workflow started directly cannot get around the list;
an approver removed while an agent waits stops counting; four eyes; two approvals from different approvers, also
when both arrive at once; the CLI's `lobstack approvers` and its refusals; the caller identity Temporal recorded
for each decision, and the account's demand that it match the declared approver (item 3 and the brief's step 5).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from clients.client import DecisionRefused, LobstackClient
from contracts.approver_policy import ApproverChange
from contracts.identifiers import workflow_id
from contracts.models import AgentState, ApprovalState, LifecycleInput
from contracts.spec import SpecError
from tests.clients.cli_run import arun
from tests.hostile import raw
from tests.stack import Stack, eventually
from workflows.agent_lifecycle import AgentLifecycleWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


def new_account() -> str:
    return f"co-{uuid.uuid4().hex[:10]}"


async def details(handle: WorkflowHandle[Any, Any]) -> str:
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    text: str = meta.current_details
    return text


def refused(stack: Stack, agent_id: str) -> list[tuple[str, str]]:
    return [(e.actor, e.reason) for e in stack.registry.events(agent_id=agent_id) if "refused" in e.action]


async def test_an_agent_no_one_could_approve_is_refused_before_anything_starts(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        agent_id = f"t-{uuid.uuid4().hex[:12]}"
        spec = stack.spec(account_id=account, require_approval=True, agent_id=agent_id)
        with pytest.raises(SpecError, match=rf"approvers: account {account} has no approvers") as err:
            await stack.client.create_agent(spec)
        assert f"lobstack approvers add --account {account} NAME" in str(err.value)
        with pytest.raises(RPCError) as missing:
            await stack.temporal.get_workflow_handle(workflow_id(agent_id)).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND

        policy = await stack.client.add_approver(account, "dana")
        assert policy.approvers == ["dana"]
        narrowed = stack.spec(account_id=account, require_approval=True, approvers=["dana", "zed"])
        with pytest.raises(SpecError, match=r"approvers: zed not approvers of account .* may only narrow"):
            await stack.client.create_agent(narrowed)
        # Adding twice changes nothing; the other account sees none of it (row-level security on PostgreSQL).
        assert (await stack.client.add_approver(account, "dana")).approvers == ["dana"]
        assert "dana" not in (await stack.client.approval_policy("acme")).approvers
        with pytest.raises(SpecError, match="never an approver"):
            await stack.client.add_approver(account, "your-name")


async def test_a_removed_approver_stops_counting_for_an_agent_already_waiting(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        await stack.client.add_approver(account, "dana")
        await stack.client.add_approver(account, "erin")
        agent_id = await stack.client.create_agent(stack.spec(account_id=account, require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        assert (await stack.client.remove_approver(account, "dana")).approvers == ["erin"]
        with pytest.raises(DecisionRefused, match=f"not an approver of account {account}"):
            await stack.client.approve(agent_id, approver="dana")
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await handle.signal("approve", {"approver": "dana", "reason": "still me?"})

        async def two_refused() -> list[tuple[str, str]] | None:
            found = refused(stack, agent_id)
            return found if len(found) == 2 else None

        trail = await eventually(two_refused, timeout_s=20, what="both of dana's decisions refused and audited")
        assert [actor for actor, _ in trail] == ["dana", "dana"]
        assert "not an approver of account" in await details(handle)
        approved = await stack.client.approve(agent_id, approver="erin", reason="ok")
        assert approved.approved_by == "erin"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)


async def test_a_workflow_started_directly_cannot_get_around_the_account_list(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    agent_id = f"t-{uuid.uuid4().hex[:12]}"
    spec = stack.spec(account_id=account, require_approval=True, agent_id=agent_id)
    async with stack.workers():
        handle = await stack.temporal.start_workflow(
            AgentLifecycleWorkflow.run, LifecycleInput(spec=spec), id=workflow_id(agent_id), task_queue=stack.task_queue
        )
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        with pytest.raises(DecisionRefused, match=f"account {account} has no approvers"):
            await stack.client.approve(agent_id, approver="mallory")
        await stack.client.add_approver(account, "dana")
        with pytest.raises(DecisionRefused, match="not an approver of account"):
            await stack.client.approve(agent_id, approver="mallory")
        await stack.client.reject(agent_id, approver="dana", reason="not ours")
        assert (await handle.result()).state == AgentState.REJECTED


async def test_four_eyes_refuses_the_requester(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        for name in ("dana", "erin"):
            await stack.client.add_approver(account, name)
        await stack.client.change_approvers(ApproverChange(account_id=account, action="policy", four_eyes=True))
        agent_id = await stack.client.create_agent(
            stack.spec(account_id=account, require_approval=True), requested_by="dana"
        )
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        with pytest.raises(DecisionRefused, match="four eyes"):
            await stack.client.approve(agent_id, approver="dana")
        assert (await stack.client.approve(agent_id, approver="erin")).approved_by == "erin"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert [actor for actor, reason in refused(stack, agent_id) if "four eyes" in reason] == ["dana"]


async def test_two_approvals_from_different_approvers(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        for name in ("dana", "erin", "fay"):
            await stack.client.add_approver(account, name)
        change = ApproverChange(account_id=account, action="policy", two_approvals_skills=["email.send"])
        assert (await stack.client.change_approvers(change)).two_approvals_skills == ["email.send"]
        agent_id = await stack.client.create_agent(
            stack.spec(account_id=account, require_approval=True, skills=["email.send"])
        )
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        first = await stack.client.approve(agent_id, approver="dana", reason="fine by me")
        assert first.state == AgentState.PENDING_APPROVAL
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        assert "1 of 2 approvals: dana; waiting for one more approver" in await details(handle)
        with pytest.raises(DecisionRefused, match="a different approver must give the second"):
            await stack.client.approve(agent_id, approver="dana")
        second = await stack.client.approve(agent_id, approver="erin", reason="me too")
        assert second.approved_by == "erin"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    events = stack.registry.events(agent_id=agent_id)
    assert [(e.action, e.actor) for e in events if e.action.startswith("agent.approv")] == [
        ("agent.approval_recorded", "dana"),
        ("agent.approval_refused", "dana"),
        ("agent.approved", "erin"),
    ]
    assert [e.details.get("approvals") for e in events if e.action == "agent.approved"] == ["dana, erin"]


async def test_two_approvers_at_once_both_count(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        for name in ("dana", "erin"):
            await stack.client.add_approver(account, name)
        change = ApproverChange(account_id=account, action="policy", two_approvals_sizes=["large"])
        await stack.client.change_approvers(change)
        agent_id = await stack.client.create_agent(stack.spec(account_id=account, require_approval=True, size="large"))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        handle = stack.temporal.get_workflow_handle(workflow_id(agent_id))
        await asyncio.gather(
            handle.signal("approve", {"approver": "dana"}), handle.signal("approve", {"approver": "erin"})
        )
        status = await stack.client.wait_for(agent_id, {AgentState.PROVISIONING, AgentState.RUNNING}, timeout_s=30)
        assert status.approved_by in ("dana", "erin")
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    approved = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.approved"]
    assert len(approved) == 1 and sorted(approved[0].details["approvals"].split(", ")) == ["dana", "erin"]
    assert await raw.workflow_task_failures(handle) == []


async def test_tool_approvals_use_the_account_approvers(stack_any_db: Stack) -> None:
    stack, account = stack_any_db, new_account()
    async with stack.workers():
        await stack.client.add_approver(account, "dana")
        approval = await stack.start_approval(f"t-{uuid.uuid4().hex[:10]}", approvers=[], account_id=account)
        with pytest.raises(DecisionRefused, match="not an approver of account"):
            await stack.client.decide_approval(approval.id, approver="mallory", approved=True)
        await stack.client.remove_approver(account, "dana")
        with pytest.raises(DecisionRefused, match="has no approvers"):
            await stack.client.decide_approval(approval.id, approver="dana", approved=True)
        await stack.client.add_approver(account, "dana")
        status = await stack.client.decide_approval(approval.id, approver="dana", approved=True)
        assert (status.state, status.decided_by) == (ApprovalState.APPROVED, "dana")


async def test_the_cli_manages_approvers_and_refuses_bad_names(stack: Stack) -> None:
    account = new_account()
    env = {
        "TEMPORAL_ADDRESS": stack.temporal.service_client.config.target_host,
        "LOBSTACK_TASK_QUEUE": stack.task_queue,
    }
    async with stack.workers():
        added = await arun("approvers", "add", "--account", account, "dana", env=env)
        assert added.code == 0 and "approvers: dana" in added.out, added
        policy = await arun(
            "approvers", "policy", "--account", account, "--four-eyes", "--two-approvals-sizes", "large", "--json",
            env=env,
        )  # fmt: skip
        assert policy.code == 0, policy
        shown = json.loads(policy.out)
        assert (shown["four_eyes"], shown["two_approvals_sizes"], shown["approvers"]) == (True, ["large"], ["dana"])
        # With two approvals needed, the CLI says the first was recorded and the agent still waits.
        await stack.client.add_approver(account, "erin")
        agent_id = await stack.client.create_agent(stack.spec(account_id=account, require_approval=True, size="large"))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        first = await arun("agent", "approve", agent_id, "--approver", "dana", env=env)
        assert first.code == 0 and "recorded dana's approval" in first.out and "1 of 2 approvals: dana" in first.out
        await stack.client.reject(agent_id, approver="erin", reason="not now")
        await stack.client.remove_approver(account, "erin")
        removed = await arun("approvers", "remove", "--account", account, "dana", env=env)
        assert removed.code == 0 and "approvers: none" in removed.out, removed
        gated = await arun(
            "agent", "create", "--account", account, "--name", "helper", "--require-approval", env=env
        )  # fmt: skip
        assert gated.code != 0 and f"account {account} has no approvers" in gated.err and "Traceback" not in gated.err
    for bad in ("your-name", "jo@example.com", "Approver"):
        done = await arun("approvers", "add", "--account", account, bad, env=env)
        assert done.code == 2 and "never an approver" in done.err and "Traceback" not in done.err, done


async def as_identity(stack: Stack, identity: str) -> LobstackClient:
    """A client whose calls Temporal records as sent by `identity` (as the Web UI sends a signed-in user's e-mail)."""
    client = await Client.connect(
        stack.temporal.service_client.config.target_host,
        namespace=stack.temporal.namespace,
        identity=identity,
        data_converter=stack.temporal.data_converter,
    )
    return LobstackClient(client, task_queue=stack.task_queue)


async def test_a_decision_records_the_caller_identity_and_the_account_may_require_a_match(
    stack_any_db: Stack,
) -> None:
    stack, account = stack_any_db, new_account()
    alice = await as_identity(stack, "alice")
    async with stack.workers():
        for name in ("alice", "bob"):
            await stack.client.add_approver(account, name)
        policy = ApproverChange(account_id=account, action="policy", require_identity_match=True)
        assert (await stack.client.change_approvers(policy)).require_identity_match
        agent_id = await stack.client.create_agent(stack.spec(account_id=account, require_approval=True))
        await stack.client.wait_for(agent_id, {AgentState.PENDING_APPROVAL}, timeout_s=30)
        with pytest.raises(DecisionRefused, match=r"identity: .* caller as 'alice', the body names 'bob'"):
            await alice.approve(agent_id, approver="bob", reason="on bob's behalf")
        await alice.temporal.get_workflow_handle(workflow_id(agent_id)).signal("approve", {"approver": "bob"})

        async def both_refused() -> list[Any] | None:
            found = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.approval_refused"]
            return found if len(found) == 2 else None

        trail = await eventually(both_refused, timeout_s=20, what="both of alice's claims to be bob refused")
        assert [(e.actor, e.details.get("identity"), e.details.get("handler")) for e in trail] == [
            ("bob", "alice", "decide"),
            ("bob", "alice", "approve"),
        ]
        assert (await alice.approve(agent_id, approver="alice", reason="me")).approved_by == "alice"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    approved = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "agent.approved"]
    assert [(e.actor, e.details.get("identity")) for e in approved] == [("alice", "alice")]


async def test_without_a_match_required_the_identity_is_still_recorded(stack: Stack) -> None:
    account = new_account()
    ops = await as_identity(stack, "ops-console")
    async with stack.workers():
        await stack.client.add_approver(account, "dana")
        approval = await stack.start_approval(f"t-{uuid.uuid4().hex[:10]}", approvers=["dana"], account_id=account)
        status = await ops.decide_approval(approval.id, approver="dana", approved=False, reason="no")
        assert status.state == ApprovalState.REJECTED
        agent_id = status.agent_id
    [decided] = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "approval.rejected"]
    assert (decided.actor, decided.details.get("identity")) == ("dana", "ops-console")
