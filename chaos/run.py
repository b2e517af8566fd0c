"""The chaos run: N lifecycles through a faulty world, then an independent count of what is left.

Half the agents are destroyed while still provisioning, each at one of four points (right after the start, while
its VM is being created, while it boots, during the health check); the other half are destroyed once running. All the
while cloudsim injects its faults (chaos/faults.py), and the run SIGKILLs and restarts the worker and restarts
OpenBao as lifecycles finish. At the end every lifecycle must be closed and nothing may be left anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

import devstack
from activities.secrets.pool_vault import PoolVault
from chaos.faults import FaultPlan
from chaos.report import Leftovers, count_leftovers, final_line, table
from chaos.stack import ChaosStack, chaos_stack
from clients.client import LobstackClient
from contracts.identifiers import workflow_id
from contracts.models import AgentState, AgentStatus
from contracts.pool import POOL_PROVIDERS, PoolTuning
from contracts.queues import WORKFLOW_QUEUE
from contracts.regions import CLOUD_PROVIDERS
from contracts.spec import AgentSpec
from store import Registry
from workflows.agent_lifecycle import AgentLifecycleWorkflow

# Where a destroy-while-provisioning lands, by what the status query shows.
PHASES = ("start", "creating", "booting", "health")
POLL_S = 0.2
# Warm pools on the providers that have them, in the agents' region and size: hetzner and vultr agents claim from them
# while the worker is killed, and the pools are deleted at the end (their VMs and identities then count as left).
POOL_SIZE = 2
POOL_TUNING = PoolTuning(probe_every_s=30, claim_grace_s=60, backoff_first_s=1, backoff_max_s=10)


@dataclass
class Outcome:
    agent_id: str
    provider: str
    plan: str  # a phase from PHASES, or "running"
    destroyed_while: str = ""  # what the status showed when the destroy signal went out
    state: str = "open"
    error: str = ""
    seconds: float = 0.0


@dataclass
class Progress:
    n: int
    finished: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def done(self) -> None:
        self.finished += 1
        self.changed.set()

    async def reached(self, fraction: float) -> None:
        while self.finished < fraction * self.n:
            self.changed.clear()
            await self.changed.wait()


def phase_of(status: AgentStatus) -> str:
    """The provisioning step a status shows, in PHASES terms; the state itself once past provisioning."""
    if status.state != AgentState.PROVISIONING:
        return status.state.value
    if status.address:
        return "health"
    if status.vm_id:
        return "booting"
    if "creating its VM" in status.waiting_for:
        return "creating"
    return "start"


async def _status(client: LobstackClient, agent_id: str) -> AgentStatus | None:
    """The status, or None while no worker can answer the query (it may just have been killed)."""
    try:
        return await client.status(agent_id)
    except RPCError:
        return None


async def lifecycle(stack: ChaosStack, client: LobstackClient, outcome: Outcome, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    spec = AgentSpec(
        account_id=f"chaos-{outcome.provider}",
        name="chaos",
        provider=outcome.provider,
        region="eu-central",
        skills=["web.search"],
        agent_id=outcome.agent_id,
        health_timeout_s=240,
    )
    await client.create_agent(spec)
    target = PHASES.index(outcome.plan) if outcome.plan in PHASES else None
    while loop.time() < deadline:
        status = await _status(client, outcome.agent_id)
        if status is not None:
            phase = phase_of(status)
            if status.state.terminal or status.state in (AgentState.DESTROYING,):
                outcome.destroyed_while = f"never ({phase})"
                break
            ready = (
                phase == "running"
                if target is None
                else phase == "running" or (phase in PHASES and PHASES.index(phase) >= target)
            )
            if ready:
                await client.destroy(outcome.agent_id, requested_by="chaos", reason=f"chaos: destroy at {outcome.plan}")
                outcome.destroyed_while = phase
                break
        await asyncio.sleep(POLL_S)
    await _until_closed(stack, outcome, deadline)


async def _until_closed(stack: ChaosStack, outcome: Outcome, deadline: float) -> None:
    handle = stack.dev.client.get_workflow_handle_for(AgentLifecycleWorkflow.run, workflow_id(outcome.agent_id))
    try:
        result = await asyncio.wait_for(handle.result(), timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        outcome.state = result.state.value
    except WorkflowFailureError as err:
        outcome.state = AgentState.FAILED.value
        outcome.error = str(err.cause)[:300]
    except TimeoutError:
        outcome.state = "open"


async def disrupt(stack: ChaosStack, plan: FaultPlan, progress: Progress, log: list[str], t0: float) -> None:
    for event in plan.disruptions():
        await progress.reached(event.at_fraction)
        if progress.finished >= progress.n:
            break
        at = f"[{time.monotonic() - t0:6.1f}s, {progress.finished}/{progress.n} finished]"
        if event.kind == "kill_worker":
            stack.worker.kill()
            log.append(f"{at} worker SIGKILLed (pid {stack.worker.pid})")
            print(log[-1], flush=True)
            stack.worker.start()
            await stack.worker.started()
            log.append(f"[{time.monotonic() - t0:6.1f}s] worker restarted")
        else:
            await asyncio.to_thread(stack.openbao.restart)
            log.append(f"{at} OpenBao restarted (down and unsealed again in-run)")
        print(log[-1], flush=True)


async def storms(stack: ChaosStack, plan: FaultPlan, stop: asyncio.Event) -> int:
    count = 0
    providers = list(CLOUD_PROVIDERS)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=plan.storm_every_s)
        if stop.is_set():
            break
        await asyncio.to_thread(plan.storm, stack.dev.cloudsim, providers[count % len(providers)])
        count += 1
    return count


async def run_chaos(
    home: Path,
    *,
    n: int,
    seed: int,
    concurrency: int,
    timeout_s: float,
    boot_latency_s: float,
    plan: FaultPlan,
    database_url: str | None = None,
) -> int:
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    providers = [CLOUD_PROVIDERS[i % len(CLOUD_PROVIDERS)] for i in range(n)]
    plans = [PHASES[i // 2 % len(PHASES)] if i % 2 == 0 else "running" for i in range(n)]
    rng.shuffle(plans)
    outcomes = [Outcome(f"chaos-{seed}-{i:04d}", providers[i], plans[i]) for i in range(n)]
    per_provider = Counter(providers)
    print(
        f"chaos: seed {seed}, {n} lifecycles ({sum(p != 'running' for p in plans)} destroyed while provisioning), "
        f"{concurrency} at a time; " + ", ".join(f"{p} {c}" for p, c in sorted(per_provider.items())),
        flush=True,
    )
    # The driver's own logs (the gateway's complaints while OpenBao or the worker is down) go to a file, not the table:
    # created 0600 in a 0700 directory, as every server log (devstack/files.py); logging appends to it.
    driver_log = devstack.private_dir(home / "logs") / "driver.log"
    os.close(devstack.open_private(driver_log))
    logging.basicConfig(filename=driver_log, level=logging.INFO, force=True)
    t0 = time.monotonic()
    async with chaos_stack(home, seed=seed, boot_latency_s=boot_latency_s, database_url=database_url) as stack:
        print(
            f"[{time.monotonic() - t0:6.1f}s] stack up: {stack.dev.temporal.ui_url}, logs in {home / 'logs'}",
            flush=True,
        )
        await asyncio.to_thread(plan.install, stack.dev.cloudsim, per_provider)
        client = LobstackClient(stack.dev.client, task_queue=WORKFLOW_QUEUE)
        for provider in POOL_PROVIDERS:
            await client.set_pool(provider, "eu-central", "small", min=POOL_SIZE, max=POOL_SIZE, tuning=POOL_TUNING)
        progress = Progress(n)
        gate = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        events: list[str] = []

        async def one(outcome: Outcome) -> None:
            async with gate:
                started = time.monotonic()
                try:
                    await lifecycle(stack, client, outcome, deadline)
                except Exception as err:  # the run's own failure, reported per lifecycle, never hidden
                    outcome.error = f"{type(err).__name__}: {err}"[:300]
                finally:
                    outcome.seconds = time.monotonic() - started
                    progress.done()

        stop_storms = asyncio.Event()
        storm_task = asyncio.create_task(storms(stack, plan, stop_storms))
        disrupt_task = asyncio.create_task(disrupt(stack, plan, progress, events, t0))
        await asyncio.gather(*(one(o) for o in outcomes))
        stop_storms.set()
        storm_count = await storm_task
        disrupt_task.cancel()
        await asyncio.gather(disrupt_task, return_exceptions=True)
        wall = time.monotonic() - t0
        await asyncio.to_thread(stack.dev.cloudsim.clear_faults)
        pools = [await client.delete_pool(p, "eu-central", "small") for p in POOL_PROVIDERS]
        claims = sum(p.claims for p in pools)
        print(f"[{time.monotonic() - t0:6.1f}s] warm pools deleted after serving {claims} claims", flush=True)

        terminal = await _count_terminal(stack, outcomes)
        sim_state = await asyncio.to_thread(stack.dev.cloudsim.state)
        registry = Registry.from_url(stack.dev.database_url)
        try:
            left = await asyncio.to_thread(
                count_leftovers,
                sim_state,
                stack.dev.vault,
                registry,
                [o.agent_id for o in outcomes],
                PoolVault(stack.dev.vault.settings),
            )
        finally:
            registry.close()
        _print_report(outcomes, sim_state, stack, storm_count, wall, left)
    line = final_line(n, terminal, left)
    print(line, flush=True)
    return 0 if terminal == n and left.total == 0 else 1


async def _count_terminal(stack: ChaosStack, outcomes: list[Outcome]) -> int:
    closed = 0
    for outcome in outcomes:
        try:
            desc = await stack.dev.client.get_workflow_handle(workflow_id(outcome.agent_id)).describe()
        except RPCError as err:  # never started: the run's own error says why
            outcome.state = f"not started ({err.status.name if err.status else 'error'})"
            continue
        if desc.status not in (WorkflowExecutionStatus.RUNNING, WorkflowExecutionStatus.CONTINUED_AS_NEW):
            closed += 1
        elif outcome.state != "open":
            outcome.state = f"open ({outcome.state}?)"
    return closed


def _print_report(
    outcomes: list[Outcome], sim: dict[str, Any], stack: ChaosStack, storms: int, wall: float, left: Leftovers
) -> None:
    injected: Counter[str] = Counter()
    for per_kind in sim.get("injected", {}).values():
        injected.update(per_kind)
    calls = {p: sum(c.values()) for p, c in sim.get("calls", {}).items()}
    print()
    print(
        table(
            [
                ("cloud 5xx answered", injected["error"]),
                ("429 answered (storms)", f"{injected['storm_429']} ({storms} storms)"),
                ("creates whose answer was lost", injected["dropped"]),
                ("slow answers", injected["slow"]),
                ("cloud API calls", ", ".join(f"{p} {c}" for p, c in sorted(calls.items()))),
                ("OpenBao restarts", stack.openbao.restarts),
                ("worker SIGKILLs / starts", f"{stack.worker.kills} / {stack.worker.starts}"),
            ],
            "fault",
        )
    )
    print()
    states = Counter(o.state for o in outcomes)
    print(table(sorted(states.items()), "final state"))
    print()
    where = Counter(o.destroyed_while for o in outcomes if o.plan != "running")
    print(table(sorted(where.items()), "destroy sent while"))
    print()
    print(
        table(
            [
                ("VMs", left.residue.vms),
                ("firewalls", left.residue.firewalls),
                ("secrets", left.residue.secrets),
                ("policies", left.residue.policies),
                ("roles", left.residue.roles),
                ("keys", left.residue.keys),
                ("tokens", left.residue.tokens),
                ("duplicate VM creates", left.duplicate_vms),
                ("duplicate vm.created records", left.duplicate_audit),
                ("pool VMs claimed twice", left.claimed_twice),
            ],
            "left behind",
        )
    )
    for kind, agents in left.who.items():
        if agents:
            print(f"  {kind}: {', '.join(agents[:10])}{' ...' if len(agents) > 10 else ''}")
    failed = [o for o in outcomes if o.error]
    for o in failed[:10]:
        print(f"  {o.agent_id} ({o.provider}, {o.plan}) {o.state}: {o.error}")
    durations = sorted(o.seconds for o in outcomes)
    print(
        f"\nwall time {wall:.1f}s; per lifecycle p50 {durations[len(durations) // 2]:.1f}s max {durations[-1]:.1f}s",
        flush=True,
    )
