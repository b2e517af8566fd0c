"""FleetHealth activity: one batched, bounded-concurrency probe of every running agent; only changes signal.

Signalling rule (`decide`), per agent, against the last state saved in `agent_health`:
- first sight (or a new address: the VM was replaced) starts from "healthy, 0 failures": the lifecycle only reaches
  running after its own health check passed, so a healthy first probe says nothing new;
- healthy -> unhealthy signals on the FIRST failure (`consecutive_failures=1`);
- unhealthy -> unhealthy signals once more when the count reaches the agent's own `unhealthy_threshold` (its spec's,
  kept on its registry row), never otherwise: the lifecycle degrades (or replaces) the agent exactly then, without a
  timer of its own (a threshold of 1 is reached by the first failure, so that one signal does both);
- unhealthy -> healthy signals the recovery (`consecutive_failures=0`).
Every signal carries `consecutive_failures`, so a lifecycle can apply its own threshold too. A change of the unhealthy
status's kind (unreachable -> invalid) is not a change of health and signals nothing.

The state is saved only after its signal was accepted (or the lifecycle is closed), so a failed signal is retried by the
next run, never lost; a crash between signal and save repeats a signal, which lifecycles treat as idempotent.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import cast

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.health import probe
from activities.internal_messages import internal_key
from activities.registry import _translate_errors as registry_errors
from contracts.identifiers import workflow_id
from contracts.internal_messages import sealed_body
from contracts.maintenance_models import FleetHealthInput, FleetHealthResult
from contracts.models import HealthChange, HealthReport
from contracts.workflow_names import HEALTH_CHANGED_SIGNAL
from store import AgentRecord, HealthRecord, Registry
from store.maintenance import PROBED_STATES

# Signals in flight at once.
SIGNAL_CONCURRENCY = 50
# Well inside FleetHealth's 30 s heartbeat timeout.
HEARTBEAT_EVERY_S = 2.0


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
    def __init__(self, *, registry: Registry, temporal: Client, key: bytes | None = None) -> None:
        self.registry = registry
        self.temporal = temporal
        # Seals every health_changed: the lifecycle refuses one without (contracts/internal_messages.py).
        self._key = internal_key() if key is None else key
        # Built once: httpx would load the CA bundle again for every client (one per probe lane per run).
        self._tls = httpx.create_ssl_context()

    @activity.defn
    async def check_fleet(self, request: FleetHealthInput) -> FleetHealthResult:
        started = time.monotonic()
        with registry_errors("list_agents"):
            agents = [a for a in await asyncio.to_thread(self.registry.list_agents, None, PROBED_STATES) if a.address]
            previous = await asyncio.to_thread(self.registry.health_all)
        read_s = time.monotonic() - started
        reports, latencies = await self._probe_all(agents, request)
        probed_s = time.monotonic() - started
        now = datetime.now(UTC)

        result = FleetHealthResult(probed=len(reports))
        _summarise(result, latencies)
        to_save: list[HealthRecord] = []
        to_signal: list[tuple[HealthRecord, HealthChange]] = []
        for agent, report in zip(agents, reports, strict=True):
            result.healthy += int(report.healthy)
            result.unhealthy += int(not report.healthy)
            old = previous.get(agent.agent_id)
            threshold = agent.unhealthy_threshold or request.failure_threshold
            state, change = decide(old, agent.address, report, threshold=threshold, now=now)
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
        activity.logger.info(
            "fleet check: %d probed, %d signalled, %d saved in %.2fs (registry read %.2fs, probes %.2fs)",
            result.probed,
            result.signalled,
            len(to_save),
            time.monotonic() - started,
            read_s,
            probed_s - read_s,
        )
        return result

    async def _probe_all(
        self, agents: Sequence[AgentRecord], request: FleetHealthInput
    ) -> tuple[list[HealthReport], list[float]]:
        """Probe every agent, `request.concurrency` at a time; reports in the order of `agents`.

        Each agent is a host of its own, so a shared connection pool buys nothing and costs a scan of the pool on
        every request: `concurrency` lanes with a one-connection client each take agents from one queue instead.
        """
        timeout = httpx.Timeout(request.timeout_s, connect=min(request.timeout_s, 1.0))
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
        reports: list[HealthReport | None] = [None] * len(agents)
        latencies: list[float] = []
        queue = iter(enumerate(agents))
        done = 0
        beat = time.monotonic()

        async def lane() -> None:
            nonlocal done, beat
            async with httpx.AsyncClient(timeout=timeout, limits=limits, verify=self._tls) as client:
                for index, agent in queue:
                    sent = time.perf_counter()
                    reports[index] = await probe(client, agent.agent_id, agent.address)
                    latencies.append(time.perf_counter() - sent)
                    done += 1
                    # By time, not per probe: each heartbeat is a task and a payload encoding in the SDK.
                    if time.monotonic() - beat >= HEARTBEAT_EVERY_S:
                        beat = time.monotonic()
                        activity.heartbeat(done)

        await asyncio.gather(*(lane() for _ in range(max(1, min(request.concurrency, len(agents))))))
        # Every slot is filled: a lane only stops once the queue is empty, and a lane's error propagates above.
        return cast(list[HealthReport], reports), latencies

    async def _signal_all(self, changes: Sequence[tuple[HealthRecord, HealthChange]]) -> list[str]:
        limit = asyncio.Semaphore(SIGNAL_CONCURRENCY)

        async def one(agent_id: str, change: HealthChange) -> str:
            async with limit:
                try:
                    target = workflow_id(agent_id)
                    body = sealed_body(self._key, target, HEALTH_CHANGED_SIGNAL, dataclasses.asdict(change))
                    await self.temporal.get_workflow_handle(target).signal(HEALTH_CHANGED_SIGNAL, body)
                except RPCError as err:
                    if err.status == RPCStatusCode.NOT_FOUND:  # the lifecycle closed since the registry said running
                        return "closed"
                    activity.logger.warning("signal to agent %s failed: %s", agent_id, err.status.name)
                    return "failed"
            activity.heartbeat()
            return "signalled"

        return list(await asyncio.gather(*(one(state.agent_id, change) for state, change in changes)))


def _summarise(result: FleetHealthResult, latencies: list[float]) -> None:
    """Nearest-rank percentiles of the probe latencies, in ms: a few numbers in history, never one per agent."""
    if not latencies:
        return
    ordered = sorted(latencies)

    def at(p: int) -> float:
        rank = max(1, -(-len(ordered) * p // 100))
        return round(ordered[min(len(ordered), rank) - 1] * 1000, 2)

    result.probe_p50_ms, result.probe_p95_ms, result.probe_p99_ms = at(50), at(95), at(99)
    result.probe_max_ms = round(ordered[-1] * 1000, 2)


__all__ = ["FleetActivities", "decide"]
