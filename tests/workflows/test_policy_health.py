"""Skill updates and health changes reaching a running lifecycle: degrade, recover, replace."""

from __future__ import annotations

import pytest

from activities.cloud.local import pid_alive
from contracts.models import AgentPolicy, AgentState, AgentStatus, HealthChange, Residue
from contracts.spec import SpecError
from tests.stack import Stack, eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_update_skills_changes_the_policy_and_is_audited(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(skills=["web.search"]))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        before = await stack.client.policy(agent_id)
        assert before.skills == ["web.search"] and "email.*" in before.approval_required
        await stack.client.update_skills(
            agent_id, ["web.search", "email.send"], approval_required=["email.*"], requested_by="alice"
        )
        with pytest.raises(SpecError, match="skills"):
            await stack.client.update_skills(agent_id, ["Bad Skill"])

        async def updated() -> AgentPolicy | None:  # the signal is applied by the next workflow task
            policy = await stack.client.policy(agent_id)
            return policy if policy.version > before.version else None

        after = await eventually(updated, what="the skill update")
        assert after.skills == ["web.search", "email.send"] and after.approval_required == ["email.*"]
        assert after.version == before.version + 1
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    updates = [e for e in stack.registry.events(agent_id=agent_id) if e.action == "skills.updated"]
    assert [(e.actor, e.details["policy_version"]) for e in updates] == [("alice", "1")]


async def _health(stack: Stack, agent_id: str, change: HealthChange) -> None:
    await stack.health_changed(agent_id, change)


async def test_degrades_after_the_threshold_and_recovers(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=2))
        await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        await _health(stack, agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=1))
        await _health(stack, agent_id, HealthChange(False, "unreachable", "timeout", consecutive_failures=2))
        degraded = await stack.client.wait_for(agent_id, {AgentState.DEGRADED}, timeout_s=30)
        assert degraded.health == "unreachable"
        await _health(stack, agent_id, HealthChange(True, "healthy"))
        recovered = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=30)
        assert recovered.health == "healthy"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    trail = [e.action for e in stack.registry.events(agent_id=agent_id)]
    assert trail.index("agent.degraded") < trail.index("agent.recovered")


async def test_unhealthy_agent_is_replaced_on_a_new_vm(stack: Stack) -> None:
    async with stack.workers():
        agent_id = await stack.client.create_agent(stack.spec(unhealthy_threshold=1, replace_unhealthy=True))
        first = await stack.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=60)
        old_pid = stack.local.pid_of(agent_id)
        await _health(stack, agent_id, HealthChange(False, "unhealthy", "bridge says so", consecutive_failures=1))

        async def replaced() -> AgentStatus | None:  # degraded, then running again on a new process
            status = await stack.client.status(agent_id)
            new_pid = stack.local.pid_of(agent_id)
            fresh = status.state == AgentState.RUNNING and status.health == "healthy"
            return status if fresh and new_pid not in (None, old_pid) else None

        status = await eventually(replaced, timeout_s=90, what="the replacement VM")
        assert old_pid is not None and not pid_alive(old_pid)
        assert status.address != first.address
        assert stack.vms_of(agent_id) == 1
        assert stack.vault.residue(agent_id).tokens == 1, "only the new VM's login token may be live"
        await stack.client.destroy(agent_id)
        await stack.client.result(agent_id)
    assert stack.vault.residue(agent_id) == Residue() and stack.vms_of(agent_id) == 0
    trail = [e.action for e in stack.registry.events(agent_id=agent_id)]
    assert trail.count("vm.created") == 2 and "agent.replaced" in trail
