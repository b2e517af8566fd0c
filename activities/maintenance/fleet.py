"""FleetHealth activity: one batched, bounded-concurrency probe of every running agent; only changes signal.

Signalling rule (`decide`), per agent, against the last state saved in `agent_health`:
- first sight (or a new address: the VM was replaced) starts from "healthy, 0 failures": the lifecycle only reaches
  running after its own health check passed, so a healthy first probe says nothing new;
- healthy -> unhealthy signals on the FIRST failure (`consecutive_failures=1`);
- unhealthy -> unhealthy signals once more when the count reaches `failure_threshold` (default 3), never otherwise:
  the lifecycle can degrade or replace the agent on that signal without a timer of its own;
- unhealthy -> healthy signals the recovery (`consecutive_failures=0`).
Every signal carries `consecutive_failures`, so a lifecycle can apply its own threshold too. A change of the unhealthy
status's kind (unreachable -> invalid) is not a change of health and signals nothing.

The state is saved only after its signal was accepted (or the lifecycle is closed), so a failed signal is retried by the
next run, never lost; a crash between signal and save repeats a signal, which lifecycles treat as idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.health import probe
from activities.registry import _translate_errors as registry_errors
from store import AgentRecord, HealthRecord, Registry
from store.maintenance import PROBED_STATES
from workflows.maintenance_models import FleetHealthInput, FleetHealthResult
from workflows.models import HealthChange, HealthReport
from workflows.queues import workflow_id

HEALTH_SIGNAL = "health_changed"
# Signals in flight at once.
SIGNAL_CONCURRENCY = 50
HEARTBEAT_EVERY = 20


def decide(
    previous: HealthRecord | None,
    address: str,
    report: HealthReport,
    *,
    threshold: int,
    now: datetime,
) -> tuple[HealthRecord, HealthChange | None]:
    """The agent's new saved state, and the signal to send (None: no change worth telling). See the module doc."""
    if previous is None or previous.address != address:
        was_healthy, failures = True, 0
    else:
        was_healthy, failures = previous.healthy, previous.consecutive_failures
    failures = 0 if report.healthy else failures + 1
    state = HealthRecord(
        agent_id=report.agent_id,
        healthy=report.healthy,
        status=report.status,
        consecutive_failures=failures,
        address=address,
        checked_at=now,
        reason=report.reason,
    )
    changed = report.healthy != was_healthy or (not report.healthy and failures == threshold)
    if not changed:
        return state, None
    change = HealthChange(
        healthy=report.healthy,
        status=report.status,
        reason=report.reason,
        consecutive_failures=failures,
        checked_at=now,
    )
    return state, change


def _differs(old: HealthRecord | None, new: HealthRecord) -> bool:
    """Whether the saved row must be rewritten (checked_at alone is not worth a write per agent per run)."""
    if old is None:
        return True
    return (old.healthy, old.status, old.consecutive_failures, old.address, old.reason) != (
        new.healthy,
        new.status,
        new.consecutive_failures,
        new.address,
        new.reason,
    )


class FleetActivities:
    def __init__(self, *, registry: Registry, temporal: Client) -> None:
        self.registry = registry
        self.temporal = temporal

    @activity.defn
    async def check_fleet(self, request: FleetHealthInput) -> FleetHealthResult:
        with registry_errors("list_agents"):
            agents = [a for a in await asyncio.to_thread(self.registry.list_agents, None, PROBED_STATES) if a.address]
            previous = await asyncio.to_thread(self.registry.health_all)
        reports = await self._probe_all(agents, request)
        now = datetime.now(UTC)

        result = FleetHealthResult(probed=len(reports))
        to_save: list[HealthRecord] = []
        to_signal: list[tuple[HealthRecord, HealthChange]] = []
        for agent, report in zip(agents, reports, strict=True):
            result.healthy += int(report.healthy)
            result.unhealthy += int(not report.healthy)
            old = previous.get(agent.agent_id)
            state, change = decide(old, agent.address, report, threshold=request.failure_threshold, now=now)
            if change is not None:
                to_signal.append((state, change))
            elif _differs(old, state):
                to_save.append(state)

        outcomes = await self._signal_all(to_signal)
        for (state, change), outcome in zip(to_signal, outcomes, strict=True):
            if outcome == "signalled":
                result.signalled += 1
                to_save.append(state)
                activity.logger.info(
                    "agent %s health changed: %s (%s, %d consecutive failure(s))",
                    state.agent_id,
                    "healthy" if change.healthy else "unhealthy",
                    change.status,
                    change.consecutive_failures,
                )
            elif outcome == "closed":
                result.closed += 1
                to_save.append(state)
            else:
                result.signal_failures += 1

        with registry_errors("save_health"):
            await asyncio.to_thread(self.registry.save_health, to_save)
            await asyncio.to_thread(self.registry.prune_health)
        return result

    async def _probe_all(self, agents: Sequence[AgentRecord], request: FleetHealthInput) -> list[HealthReport]:
        limit = asyncio.Semaphore(max(1, request.concurrency))
        timeout = httpx.Timeout(request.timeout_s, connect=min(request.timeout_s, 1.0))
        limits = httpx.Limits(max_connections=max(1, request.concurrency), max_keepalive_connections=0)
        done = 0

        async def one(client: httpx.AsyncClient, agent: AgentRecord) -> HealthReport:
            nonlocal done
            async with limit:
                report = await probe(client, agent.agent_id, agent.address)
            done += 1
            if done % HEARTBEAT_EVERY == 0:
                activity.heartbeat(done)
            return report

        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            return list(await asyncio.gather(*(one(client, agent) for agent in agents)))

    async def _signal_all(self, changes: Sequence[tuple[HealthRecord, HealthChange]]) -> list[str]:
        limit = asyncio.Semaphore(SIGNAL_CONCURRENCY)

        async def one(agent_id: str, change: HealthChange) -> str:
            async with limit:
                try:
                    await self.temporal.get_workflow_handle(workflow_id(agent_id)).signal(HEALTH_SIGNAL, change)
                except RPCError as err:
                    if err.status == RPCStatusCode.NOT_FOUND:  # the lifecycle closed since the registry said running
                        return "closed"
                    activity.logger.warning("signal to agent %s failed: %s", agent_id, err.status.name)
                    return "failed"
            activity.heartbeat()
            return "signalled"

        return list(await asyncio.gather(*(one(state.agent_id, change) for state, change in changes)))


__all__ = ["HEALTH_SIGNAL", "FleetActivities", "decide"]
