"""Agent lifetimes (issue 14, item 4): a maximum lifetime and an idle timeout, on SQLite and PostgreSQL.

In real time on the dev server, at their shortest (a minute), two agents side by side on each database, both
databases at once: one takes its account's default maximum lifetime, the other sets an idle timeout (and a longer
lifetime of its own). Each is warned in its current details before its deadline (six seconds before, a tenth of it),
then destroyed by lobstack with the reason audited and nothing left. The bridge says how long its agent has been idle;
no agent API request in that minute is idle.
(The time-skipping server cannot run these: cleanup lists workflows, which it does not implement.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

import devstack
from contracts.limits import LimitsChange
from contracts.models import AgentState, AgentStatus, Residue
from tests.conftest import _drop_postgres_database, _fresh_postgres_database
from tests.stack import Stack, eventually, make_stack, reap

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _trail(stack: Stack, agent_id: str) -> list[tuple[str, str, str]]:
    return [(e.action, e.actor, e.reason) for e in stack.registry.events(agent_id=agent_id)]


async def _warning(stack: Stack, agent_id: str, text: str) -> str:
    async def warned() -> str | None:
        said = (await stack.client.status(agent_id)).waiting_for
        return said if text in said else None

    return await eventually(warned, timeout_s=120, what=f"{agent_id}: {text}")


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    url, name = _fresh_postgres_database(postgres_admin_url)
    try:
        yield url
    finally:
        _drop_postgres_database(postgres_admin_url, name)


@pytest.mark.postgres
async def test_lifetimes_warn_then_destroy(
    temporal_dev: WorkflowEnvironment, openbao: devstack.OpenBaoDev, postgres_url: str, tmp_path: Path
) -> None:
    """On a SQLite and a PostgreSQL registry at once (each its own stack and queue): a minute each, not two."""
    stacks = []
    for name, url in (("sqlite", f"sqlite:///{tmp_path / 'registry.db'}"), ("postgresql", postgres_url)):
        (tmp_path / name).mkdir()
        stacks.append(make_stack(temporal_dev.client, openbao, url, tmp_path / name))
    try:
        async with stacks[0].workers(), stacks[1].workers():
            await asyncio.gather(*(_lifetimes(stack) for stack in stacks))
    finally:
        for stack in stacks:
            reap(stack)


async def _lifetimes(stack: Stack) -> None:
    """One agent on the account's default lifetime, one with an idle timeout: warned, then destroyed, audited."""
    await stack.client.change_limits(LimitsChange(account_id="acme", action="set", default_max_lifetime_s=60))
    aged = await stack.client.create_agent(stack.spec())
    idle = await stack.client.create_agent(stack.spec(idle_timeout_s=60, max_lifetime_s=3600))
    running: list[AgentStatus] = await asyncio.gather(
        *(stack.client.wait_for(a, {AgentState.RUNNING}, timeout_s=60) for a in (aged, idle))
    )
    lifetime, idling = running
    assert lifetime.running_at is not None and lifetime.expires_at == lifetime.running_at + timedelta(minutes=1)
    assert lifetime.idle_timeout_s == 0 and idling.idle_timeout_s == 60
    assert idling.running_at is not None and idling.expires_at == idling.running_at + timedelta(hours=1)

    warned = await _warning(stack, aged, "Warning: its maximum lifetime of 1m ends at")
    assert f"ends at {lifetime.expires_at:%Y-%m-%d %H:%M:%S} UTC; it will then be destroyed" in warned
    warned = await _warning(stack, idle, "Warning: idle for")
    assert "it will be destroyed after 1m without an agent API request" in warned
    results = await asyncio.gather(*(stack.client.result(a) for a in (aged, idle)))

    ended, idled = results
    assert ended.state == AgentState.DESTROYED and ended.reason == "its maximum lifetime of 1m ended"
    assert idled.state == AgentState.DESTROYED and idled.reason.startswith("no agent API request for ")
    for agent_id in (aged, idle):
        assert stack.vault.residue(agent_id) == Residue() and stack.vms_of(agent_id) == 0
    trail = _trail(stack, aged)
    assert ("agent.lifetime_warning", "lobstack", f"destroyed at {lifetime.expires_at:%Y-%m-%d %H:%M:%S} UTC") in trail
    assert ("agent.lifetime_reached", "lobstack", ended.reason) in trail
    assert trail[-1] == ("agent.destroyed", "lobstack", ended.reason)
    actions = [action for action, _, _ in _trail(stack, idle)]
    assert actions.index("agent.idle_warning") < actions.index("agent.idle_timeout") < actions.index("agent.destroyed")
    assert "agent.lifetime_warning" not in actions
