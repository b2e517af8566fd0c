"""API budget: cloud API calls per lifecycle per provider, and the 429s seen, at the default budgets, time-compressed.

    .venv/bin/python bench/api_budget.py [--n 1000] [--k 5] [--concurrency 30] [--storm 30] [--boot 0]
    .venv/bin/python bench/api_budget.py --boot 30 --n 6 --storm 0    # the per-lifecycle figure, a real boot time

N full lifecycles (create -> running/healthy -> destroy -> result), split round-robin across hetzner, digitalocean and
vultr, at most `--concurrency` in flight (every running simulated VM is a real bridge process), cloudsim boot
latency 0 (`--boot B` shows what status polling costs for a B-second boot).

Time compression: each provider keeps its documented budget (activities/cloud/budget.py) and cloudsim its documented
limit (cloudsim/ratelimit.py), both sped up by the same factor K: the stack's API budget (StackOptions.api_budgets)
= documented calls/s x K (which also sets the task queue's activities/s), cloudsim's windows divided by K (Hetzner
3600 per 3600/K s, DigitalOcean 5000 per 3600/K s and 250 per 60/K s, Vultr 30 per 1/K s). Counts (limits, token
bucket bursts) are not scaled, so the budget-to-limit relationship is exactly the real one. Not compressed: retry
delays, Retry-After values (whole seconds) and timeouts, which only makes rate-limit waits relatively longer.

Per provider: calls per lifecycle from cloudsim's own counters (every request it received, 429s included) and from the
workflows' LifecycleResult.api_calls, and the VM calls' ratio to 4, the least a lifecycle can make (create, one status
read, delete, one proof of absence); the workers' first status look waits for the stack's boot latency, as it waits for
a provider's typical boot time (activities/cloud/boot_time.py). Firewall calls (any cloudsim endpoint key containing
"firewall") are counted apart, in their own column; 429s from cloudsim's counter; and from each workflow's history, how
many rate limits reached the workflow (an ActivityTaskFailed whose failure is ProviderRateLimited) and how many Temporal
retried as activities (an activity whose last attempt followed a ProviderRateLimited: its attempts but the last).

`--storm M` then runs M more lifecycles while cloudsim answers 429 to bursts of requests (storm_429, on every
endpoint of every provider, retry-after 1 s), to show the retries absorb them; 0 skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import Failure
from temporalio.client import WorkflowFailureError

from activities.cloud.budget import DOCUMENTED_CALLS_PER_S
from bench._common import PLOTS, Deadline, header, plot_note
from clients.client import LobstackClient, LobstackClientError
from cloudsim.ratelimit import DEFAULT_LIMITS
from contracts.identifiers import workflow_id
from contracts.models import AgentState
from contracts.queues import WORKFLOW_QUEUE
from contracts.spec import AgentSpec
from devstack.stack import DevStack, StackOptions, dev_stack

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROVIDERS = ("hetzner", "digitalocean", "vultr")
RATE_LIMITED = "ProviderRateLimited"
# The least a lifecycle can cost: create, one status read, delete, one proof of absence.
MIN_CALLS = 4


@dataclass
class Outcome:
    provider: str
    ok: bool
    api_calls: int = 0
    error: str = ""
    # Rate limits the workflow saw (activity failures) and ones Temporal retried inside the activity's policy.
    reached_workflow: int = 0
    absorbed: int = 0


@dataclass
class Phase:
    name: str
    outcomes: list[Outcome] = field(default_factory=list)
    calls: dict[str, Counter[str]] = field(default_factory=dict)  # provider -> endpoint key -> requests
    rate_limited: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0

    def of(self, provider: str) -> list[Outcome]:
        return [o for o in self.outcomes if o.provider == provider]

    def total_calls(self, provider: str, *, firewall: bool = False) -> int:
        """The provider's VM calls (every endpoint but firewalls'), or with `firewall` its firewall calls."""
        return sum(v for k, v in self.calls.get(provider, Counter()).items() if is_firewall(k) == firewall)

    def per_lifecycle(self, provider: str, *, firewall: bool = False) -> float:
        n = len(self.of(provider))
        return self.total_calls(provider, firewall=firewall) / n if n else float("nan")

    @property
    def failures_reaching_workflows(self) -> int:
        """Lifecycles in which a rate limit reached the workflow as an activity failure (failed over or failed)."""
        return sum(1 for o in self.outcomes if o.reached_workflow)


def is_firewall(endpoint_key: str) -> bool:
    return "firewall" in endpoint_key


def compressed_limits(k: float) -> dict[str, dict[str, Any]]:
    """cloudsim's documented limits with every window divided by K."""
    limits: dict[str, dict[str, Any]] = {}
    for provider, cfg in DEFAULT_LIMITS.items():
        limits[provider] = {key: value / k for key, value in cfg.items() if key.endswith("window_s")}
    return limits


def failure_types(failure: Failure) -> list[str]:
    types = []
    node: Failure | None = failure
    while node is not None and node.ByteSize():
        if node.HasField("application_failure_info"):
            types.append(node.application_failure_info.type)
        node = node.cause if node.HasField("cause") else None
    return types


async def rate_limits_in_history(dev: DevStack, agent_id: str) -> tuple[int, int]:
    """(rate limits that reached the workflow, rate limits retried by Temporal) in the lifecycle's history."""
    history = await dev.client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    reached = absorbed = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED:
            reached += RATE_LIMITED in failure_types(event.activity_task_failed_event_attributes.failure)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            # Only an activity's last attempt is recorded, with its attempt number and the previous one's failure.
            started = event.activity_task_started_event_attributes
            if started.HasField("last_failure") and RATE_LIMITED in failure_types(started.last_failure):
                absorbed += started.attempt - 1
    return reached, absorbed


async def one_lifecycle(
    dev: DevStack, client: LobstackClient, provider: str, gate: asyncio.Semaphore, deadline: Deadline
) -> Outcome:
    spec = AgentSpec(
        account_id="bench",
        name="budget",
        provider=provider,
        region="eu-central",
        skills=["web.search"],
        agent_id=f"budget-{uuid.uuid4().hex[:12]}",
        health_timeout_s=120,
    )
    outcome = Outcome(provider, ok=False)
    async with gate:  # bounds the bridges running at once
        agent_id = await client.create_agent(spec)
        try:
            await client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=deadline.left(), max_interval_s=0.2)
        except LobstackClientError:
            pass  # ended before running: result() below raises its failure
        except TimeoutError as err:
            outcome.error = str(err)
        with contextlib.suppress(LobstackClientError):  # a lifecycle that already ended has nothing to destroy
            await client.destroy(agent_id, requested_by="bench", reason="api budget bench")
        try:
            result = await asyncio.wait_for(client.result(agent_id), timeout=max(1.0, deadline.left()))
        except WorkflowFailureError as err:
            outcome.error = outcome.error or f"failed: {err.cause}"
        except TimeoutError:
            outcome.error = outcome.error or "no result before the deadline"
        else:
            outcome.api_calls = result.api_calls
            outcome.ok = result.state == AgentState.DESTROYED and not outcome.error
            if result.state != AgentState.DESTROYED:
                outcome.error = f"ended {result.state.value}: {result.reason}"
    outcome.reached_workflow, outcome.absorbed = await rate_limits_in_history(dev, agent_id)
    return outcome


def counters(state: dict[str, Any]) -> tuple[dict[str, Counter[str]], dict[str, int]]:
    calls = {p: Counter(state["calls"].get(p, {})) for p in PROVIDERS}
    return calls, {p: int(state["rate_limited"].get(p, 0)) for p in PROVIDERS}


async def run_phase(
    name: str, dev: DevStack, client: LobstackClient, n: int, concurrency: int, timeout_s: float
) -> Phase:
    before_calls, before_429 = counters(await asyncio.to_thread(dev.cloudsim.state))
    gate = asyncio.Semaphore(concurrency)
    deadline = Deadline(timeout_s)
    providers = list(itertools.islice(itertools.cycle(PROVIDERS), n))
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(one_lifecycle(dev, client, p, gate, deadline) for p in providers), return_exceptions=True
    )
    phase = Phase(name, wall_s=time.monotonic() - t0)
    for provider, result in zip(providers, results, strict=True):
        if isinstance(result, BaseException):
            phase.outcomes.append(Outcome(provider, ok=False, error=f"{type(result).__name__}: {result}"))
        else:
            phase.outcomes.append(result)
    after_calls, after_429 = counters(await asyncio.to_thread(dev.cloudsim.state))
    phase.calls = {p: after_calls[p] - before_calls[p] for p in PROVIDERS}
    phase.rate_limited = {p: after_429[p] - before_429[p] for p in PROVIDERS}
    return phase


def report(phase: Phase) -> None:
    print(f"-- {phase.name}: {len(phase.outcomes)} lifecycles in {phase.wall_s:.1f}s")
    for p in PROVIDERS:
        mine = phase.of(p)
        ok = sum(o.ok for o in mine)
        reported = sum(o.api_calls for o in mine)
        by_key = " ".join(f"{k} {v / len(mine):.2f}" for k, v in sorted(phase.calls[p].items())) if mine else "-"
        print(
            f"  {p:<12} ok {ok}/{len(mine)} (failed {len(mine) - ok}); calls/lifecycle {phase.per_lifecycle(p):.2f} "
            f"[{by_key}] (cloudsim {phase.total_calls(p)}; workflows report {reported}, "
            f"{reported / len(mine) if mine else float('nan'):.2f}/lifecycle); 429s {phase.rate_limited[p]}; "
            f"rate limits retried by Temporal {sum(o.absorbed for o in mine)}; "
            f"reaching workflows {sum(1 for o in mine if o.reached_workflow)}"
        )
    for o in [o for o in phase.outcomes if not o.ok][:5]:
        print(f"  failure ({o.provider}): {o.error[:300]}")


def per_lifecycle_table(phase: Phase) -> None:
    print(
        f"  {'provider':<12} {'VM calls/lifecycle':>18} {f'ratio to {MIN_CALLS}':>11} {'firewall calls/lifecycle':>24}"
    )
    for p in PROVIDERS:
        vm_calls = phase.per_lifecycle(p)
        print(
            f"  {p:<12} {vm_calls:>18.2f} {vm_calls / MIN_CALLS:>11.2f} {phase.per_lifecycle(p, firewall=True):>24.2f}"
        )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="lifecycles, split across the three providers")
    parser.add_argument("--k", type=float, default=5.0, help="time compression: budgets x K, limit windows / K")
    parser.add_argument("--concurrency", type=int, default=30, help="lifecycles in flight (each runs a bridge)")
    parser.add_argument("--storm", type=int, default=30, help="lifecycles in the 429-storm phase (0: skip)")
    parser.add_argument("--storm-429", type=int, default=20, help="429s per provider per storm burst")
    parser.add_argument("--boot", type=float, default=0.0, help="cloudsim boot latency, seconds (not compressed)")
    parser.add_argument("--timeout", type=float, default=1500.0, help="deadline for each phase, seconds")
    args = parser.parse_args()
    k = args.k
    # The storm's 429s are expected: keep the worker's per-attempt failure warnings and the servers' access logs out.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    logging.getLogger("uvicorn").setLevel(logging.WARNING)
    header(
        "api budget",
        n=args.n,
        k=k,
        concurrency=args.concurrency,
        boot_latency_s=args.boot,
        storm=args.storm,
        storm_429=args.storm_429,
    )
    limits = compressed_limits(k)
    for p in PROVIDERS:
        documented = DOCUMENTED_CALLS_PER_S[p]
        cfg = DEFAULT_LIMITS[p]
        windows = ", ".join(f"{cfg[w.replace('window_s', 'limit')]} per {limits[p][w]:g}s" for w in sorted(limits[p]))
        print(f"time compression K={k:g}: {p} budget {documented:g} -> {documented * k:g} calls/s; cloudsim {windows}")

    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="lobstack-bench-") as tmp:
        t_start = time.monotonic()
        budgets = {p: DOCUMENTED_CALLS_PER_S[p] * k for p in PROVIDERS}
        options = StackOptions(boot_latency_s=args.boot, codec=False, api_budgets=budgets, sim_rate_limits=limits)
        async with dev_stack(Path(tmp), options) as dev:
            client = LobstackClient(dev.client, task_queue=WORKFLOW_QUEUE)
            print(f"stack up in {time.monotonic() - t_start:.1f}s", flush=True)
            # Warm-up (not counted): one lifecycle per provider, so the measured runs start with warm workers.
            warm = await run_phase("warm-up", dev, client, len(PROVIDERS), len(PROVIDERS), 120)
            if any(not o.ok for o in warm.outcomes):
                report(warm)
                return 1
            phases.append(await run_phase("default budgets", dev, client, args.n, args.concurrency, args.timeout))
            report(phases[0])
            per_lifecycle_table(phases[0])
            if args.storm:
                for p in PROVIDERS:
                    # Bursts on every endpoint; each provider's next `storm_429` requests are answered 429.
                    await asyncio.to_thread(
                        dev.cloudsim.set_faults, provider=p, endpoint="*", storm_429=args.storm_429, retry_after_s=1.0
                    )
                phases.append(await run_phase("429 storm", dev, client, args.storm, args.concurrency, args.timeout))
                await asyncio.to_thread(dev.cloudsim.clear_faults)
                report(phases[1])
        print("stack stopped", flush=True)

    main_phase = phases[0]
    n = len(main_phase.outcomes)
    failed = sum(not o.ok for o in main_phase.outcomes)
    per = {p: main_phase.per_lifecycle(p) for p in PROVIDERS}
    overall = sum(main_phase.total_calls(p) for p in PROVIDERS) / n if n else float("nan")
    firewall = sum(main_phase.total_calls(p, firewall=True) for p in PROVIDERS) / n if n else float("nan")
    x = sum(main_phase.rate_limited.values())
    f = main_phase.failures_reaching_workflows
    if args.storm:
        storm = phases[1]
        print(
            f"429 storm: {len(storm.outcomes)} lifecycles, {sum(not o.ok for o in storm.outcomes)} failed, "
            f"429s {sum(storm.rate_limited.values())}, retried by Temporal {sum(o.absorbed for o in storm.outcomes)}, "
            f"rate-limit failures reaching workflows {storm.failures_reaching_workflows} (target 0)"
        )
    print(
        f"api budget: {n} lifecycles, {overall:.2f} VM calls/lifecycle, {overall / MIN_CALLS:.2f}x the least "
        f"({MIN_CALLS}) (hetzner {per['hetzner']:.2f}, digitalocean {per['digitalocean']:.2f}, "
        f"vultr {per['vultr']:.2f}); firewall calls/lifecycle {firewall:.2f}; boot {args.boot:g}s; 429s {x}, "
        f"rate-limit failures reaching workflows {f} (target 0)"
    )

    def draw(fig: Figure) -> None:
        ax1, ax2 = fig.subplots(1, 2)
        xs = range(len(PROVIDERS))
        ax1.bar([i - 0.2 for i in xs], [per[p] for p in PROVIDERS], 0.4, label="cloudsim (received)")
        reported = [sum(o.api_calls for o in main_phase.of(p)) / max(1, len(main_phase.of(p))) for p in PROVIDERS]
        ax1.bar([i + 0.2 for i in xs], reported, 0.4, label="workflows (api_calls)")
        ax1.set_xticks(list(xs), PROVIDERS)
        ax1.set_ylabel("API calls per lifecycle")
        ax1.set_title(f"n={n}, K={k:g}")
        ax1.legend(fontsize=8)
        for i, ph in enumerate(phases):
            ax2.bar(
                [j + (i - 0.5 * (len(phases) - 1)) * 0.4 for j in xs],
                [ph.rate_limited[p] for p in PROVIDERS],
                0.4,
                label=ph.name,
            )
        ax2.set_xticks(list(xs), PROVIDERS)
        ax2.set_ylabel("429s seen (cloudsim)")
        ax2.set_title(f"rate limits reaching workflows: {sum(ph.failures_reaching_workflows for ph in phases)}")
        ax2.legend(fontsize=8)

    plot_note(PLOTS / "api_budget.png", draw)
    storm_bad = any(not o.ok or o.reached_workflow for ph in phases[1:] for o in ph.outcomes)
    return 0 if f == 0 and failed == 0 and not storm_bad else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
