"""Orchestration latency: time from create to `running` (healthy) minus the simulated boot latency.

    .venv/bin/python bench/orchestration_latency.py [--n 100] [--boot 5] [--budget 1000]

N concurrent provisions on provider `vultr` against cloudsim with boot latency B. Per agent, once its status is
`running`: server-side time to healthy = status.running_at - workflow start time (Temporal's start_time; both are
server/worker clocks on this host), and the workflow's own running_at - created_at (created_at = first workflow task),
and the client-observed create_agent call -> first seen running (includes polling granularity, <= 50 ms).

The bench watches for `running` in the registry (one SELECT for all agents every 50 ms), then queries each agent's
status once. It used to poll every agent's `status` query every 50 ms: 2,000 queries/s at n=100, answered by the very
worker under test (the bench runs it in-process), which inflated every figure and overflowed Temporal's query buffer.
Reports p50/p95/p99 of (time to healthy - B); target p95 <= 1.0 s. Then destroys all and waits for their results.
`--budget 0` keeps Vultr's documented budget (30 calls/s; 15 cloud activities/s on the queue).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    PLOTS,
    PROVIDER,
    BenchStack,
    Deadline,
    RunningWatch,
    bench_stack,
    header,
    percentile,
    plot_note,
)
from contracts.identifiers import workflow_id
from contracts.models import AgentState
from contracts.spec import AgentSpec
from store import Registry

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TARGET_P95_S = 1.0
ACCOUNT = "bench"


async def provision(bs: BenchStack, watch: RunningWatch, deadline: Deadline) -> tuple[str, float, float, float]:
    spec = AgentSpec(
        account_id=ACCOUNT,
        name="lat",
        provider=PROVIDER,
        region="eu-central",
        skills=["web.search"],
        agent_id=f"lat-{uuid.uuid4().hex[:12]}",
        health_timeout_s=300,
    )
    t0 = time.monotonic()
    agent_id = await bs.client.create_agent(spec)
    await watch.seen(agent_id, deadline)
    client_s = time.monotonic() - t0
    status = await bs.client.status(agent_id)
    assert status.running_at is not None and status.created_at is not None
    desc = await bs.dev.client.get_workflow_handle(workflow_id(agent_id)).describe()
    server_s = (status.running_at - desc.start_time).total_seconds()
    workflow_s = (status.running_at - status.created_at).total_seconds()
    return agent_id, server_s, workflow_s, client_s


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--boot", type=float, default=5.0, help="cloudsim boot latency B, seconds")
    parser.add_argument("--budget", type=float, default=1000.0, help="LOBSTACK_API_BUDGET_VULTR (0: documented)")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline for each phase, seconds")
    args = parser.parse_args()
    budget = args.budget if args.budget > 0 else None
    header(
        "orchestration latency",
        n=args.n,
        provider=PROVIDER,
        boot_latency_s=args.boot,
        api_budget=budget or "documented",
    )
    failures = 0
    with tempfile.TemporaryDirectory(prefix="lobstack-bench-") as tmp:
        t_start = time.monotonic()
        async with bench_stack(Path(tmp), boot_latency_s=args.boot, budget_calls_per_s=budget) as bs:
            print(f"stack up in {time.monotonic() - t_start:.1f}s (task queue {bs.task_queue})", flush=True)
            deadline = Deadline(args.timeout)
            registry = Registry.from_url(bs.dev.database_url)
            watch = RunningWatch(registry, ACCOUNT)
            watcher = asyncio.create_task(watch.run())
            t0 = time.monotonic()
            try:
                results = await asyncio.gather(
                    *(provision(bs, watch, deadline) for _ in range(args.n)), return_exceptions=True
                )
            finally:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
                registry.close()
            print(f"provisioned {args.n} concurrently in {time.monotonic() - t0:.2f}s", flush=True)
            ok = [r for r in results if isinstance(r, tuple)]
            errors = [r for r in results if isinstance(r, BaseException)]
            failures += len(errors)
            for err in errors[:5]:
                print(f"  provision error: {type(err).__name__}: {err}")

            # Destroy every agent that exists (failed provisions clean up themselves) and wait for the results.
            t1 = time.monotonic()
            destroy_deadline = Deadline(args.timeout)

            async def destroy(agent_id: str) -> int:
                await bs.client.destroy(agent_id, requested_by="bench", reason="latency bench")
                result = await asyncio.wait_for(bs.client.result(agent_id), timeout=max(0.1, destroy_deadline.left()))
                if result.state != AgentState.DESTROYED:
                    raise RuntimeError(f"{agent_id} ended {result.state.value}")
                return result.api_calls

            done = await asyncio.gather(*(destroy(r[0]) for r in ok), return_exceptions=True)
            bad = [d for d in done if isinstance(d, BaseException)]
            failures += len(bad)
            for err in bad[:5]:
                print(f"  destroy error: {type(err).__name__}: {err}")
            calls = [float(d) for d in done if isinstance(d, int)]
            print(
                f"destroyed {len(ok) - len(bad)}/{len(ok)} in {time.monotonic() - t1:.2f}s; cloud API calls per "
                f"lifecycle p50 {percentile(calls, 50):.0f} max {max(calls, default=0):.0f}",
                flush=True,
            )
        print("stack stopped", flush=True)

    b = args.boot
    rows = [
        ("server: running_at - workflow start", [r[1] - b for r in ok]),
        ("workflow: running_at - created_at", [r[2] - b for r in ok]),
        ("client: create_agent -> seen running", [r[3] - b for r in ok]),
    ]
    print(f"time to healthy - B (B={b:g}s), {len(ok)} agents:")
    for label, values in rows:
        print(
            f"  {label:38s} p50 {percentile(values, 50):6.3f}s  p95 {percentile(values, 95):6.3f}s  "
            f"p99 {percentile(values, 99):6.3f}s  max {max(values, default=float('nan')):6.3f}s"
        )
    p95 = percentile(rows[0][1], 95)
    verdict = "meets" if p95 <= TARGET_P95_S else "ABOVE"
    print(f"orchestration latency p95 (server): {p95:.3f}s (target p95 <= {TARGET_P95_S:.1f}s; {verdict} target)")

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for label, values in rows:
            ax.hist(values, bins=30, alpha=0.5, label=label)
        ax.axvline(TARGET_P95_S, color="red", linestyle="--", label="target p95")
        ax.set_xlabel(f"time to healthy - B (s), B={b:g}")
        ax.legend()

    plot_note(PLOTS / "orchestration_latency.png", draw)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
