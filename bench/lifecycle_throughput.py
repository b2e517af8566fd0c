"""Lifecycle throughput vs a bare Temporal baseline, on one real stack (Temporal dev server, OpenBao, cloudsim).

    .venv/bin/python bench/lifecycle_throughput.py [--n 30] [--budget 1000]

N full lifecycles (create -> running/healthy -> destroy -> result) on provider `vultr` against cloudsim with boot
latency 0 and the Vultr API budget raised (StackOptions.api_budgets, see bench/_common.py), all concurrent. Then, on
the same Temporal server and client, N bare workflows each running as many no-op activities as one lifecycle scheduled
(counted from a warm-up lifecycle's history: ActivityTaskScheduled events plus local-activity markers, so moving a
step to a local activity does not make the baseline cheaper), on their own task queue.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.api.enums.v1 import EventType
from temporalio.worker import Worker

from bench._bare import BareWorkflow, noop
from bench._common import (
    PLOTS,
    PROVIDER,
    BenchStack,
    Deadline,
    bench_stack,
    header,
    percentile,
    plot_note,
    stack_cpu_s,
)
from workflows.models import AgentState
from workflows.queues import workflow_id
from workflows.spec import AgentSpec

TARGET_RATIO = 0.75
LOCAL_ACTIVITY_MARKER = "core_local_activity"


async def poll_running(bs: BenchStack, agent_id: str, deadline: Deadline) -> None:
    await bs.client.wait_for(agent_id, {AgentState.RUNNING}, timeout_s=deadline.left(), max_interval_s=0.1)


async def one_lifecycle(bs: BenchStack, deadline: Deadline) -> tuple[float, int]:
    t0 = time.monotonic()
    spec = AgentSpec(
        account_id="bench",
        name="tput",
        provider=PROVIDER,
        region="eu-central",
        skills=["web.search"],
        agent_id=f"tput-{uuid.uuid4().hex[:12]}",
        health_timeout_s=120,
    )
    agent_id = await bs.client.create_agent(spec)
    await poll_running(bs, agent_id, deadline)
    await bs.client.destroy(agent_id, requested_by="bench", reason="throughput bench")
    result = await asyncio.wait_for(bs.client.result(agent_id), timeout=max(0.1, deadline.left()))
    if result.state != AgentState.DESTROYED:
        raise RuntimeError(f"{agent_id} ended {result.state.value}: {result.reason}")
    return time.monotonic() - t0, result.api_calls


async def count_activities(bs: BenchStack, agent_id: str) -> tuple[int, int]:
    """(activities scheduled on task queues, local activities run): the baseline runs their sum as plain activities."""
    history = await bs.dev.client.get_workflow_handle(workflow_id(agent_id)).fetch_history()
    scheduled = sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    local = sum(
        1
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    )
    return scheduled, local


async def lifecycles(bs: BenchStack, n: int, timeout_s: float) -> tuple[float, list[float], list[int], int]:
    deadline = Deadline(timeout_s)
    t0 = time.monotonic()
    results = await asyncio.gather(*(one_lifecycle(bs, deadline) for _ in range(n)), return_exceptions=True)
    wall = time.monotonic() - t0
    errors = [r for r in results if isinstance(r, BaseException)]
    for err in errors[:5]:
        print(f"  lifecycle error: {type(err).__name__}: {err}")
    ok = [r for r in results if isinstance(r, tuple)]
    return wall, [r[0] for r in ok], [r[1] for r in ok], len(errors)


async def bare(bs: BenchStack, n: int, activities: int, timeout_s: float) -> tuple[float, list[float]]:
    queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
    with concurrent.futures.ThreadPoolExecutor(max_workers=64) as executor:
        worker = Worker(
            bs.dev.client,
            task_queue=queue,
            workflows=[BareWorkflow],
            activities=[noop],
            activity_executor=executor,
            max_concurrent_activities=64,
        )
        async with worker:

            async def one() -> float:
                t = time.monotonic()
                await bs.dev.client.execute_workflow(
                    BareWorkflow.run, activities, id=f"bare-{uuid.uuid4().hex[:12]}", task_queue=queue
                )
                return time.monotonic() - t

            await asyncio.wait_for(one(), timeout=60)  # warm-up: worker polling, sandbox import of the workflow
            t0 = time.monotonic()
            durations = await asyncio.wait_for(asyncio.gather(*(one() for _ in range(n))), timeout=timeout_s)
            return time.monotonic() - t0, list(durations)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--budget", type=float, default=1000.0, help="LOBSTACK_API_BUDGET_VULTR, calls/s")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline for each phase, seconds")
    args = parser.parse_args()
    header("lifecycle throughput", n=args.n, provider=PROVIDER, boot_latency_s=0.0, api_budget=args.budget)
    with tempfile.TemporaryDirectory(prefix="lobstack-bench-") as tmp:
        t_start = time.monotonic()
        async with bench_stack(Path(tmp), boot_latency_s=0.0, budget_calls_per_s=args.budget) as bs:
            print(f"stack up in {time.monotonic() - t_start:.1f}s (task queue {bs.task_queue})", flush=True)
            # Warm-up lifecycle: not timed; its history gives the activity count for the baseline.
            warm = f"tput-warm-{uuid.uuid4().hex[:8]}"
            spec = AgentSpec(account_id="bench", name="warm", provider=PROVIDER, agent_id=warm, health_timeout_s=120)
            t = time.monotonic()
            await bs.client.create_agent(spec)
            await poll_running(bs, warm, Deadline(120))
            await bs.client.destroy(warm, requested_by="bench")
            await asyncio.wait_for(bs.client.result(warm), timeout=120)
            scheduled, local = await count_activities(bs, warm)
            k = scheduled + local
            print(
                f"warm-up lifecycle: {time.monotonic() - t:.2f}s, {k} activities: {scheduled} scheduled "
                f"(ActivityTaskScheduled) + {local} local (markers)"
            )

            cpu0 = stack_cpu_s()
            wall, durations, calls, errors = await lifecycles(bs, args.n, args.timeout)
            lc_cpu = (stack_cpu_s() - cpu0) / args.n
            ok = len(durations)
            lc_tput = ok / wall if wall > 0 else 0.0
            print(
                f"lifecycles: {ok}/{args.n} ok ({errors} failed) in {wall:.2f}s; per lifecycle "
                f"p50 {percentile(durations, 50):.2f}s p95 {percentile(durations, 95):.2f}s "
                f"max {max(durations, default=float('nan')):.2f}s; cloud API calls per lifecycle "
                f"p50 {percentile([float(c) for c in calls], 50):.0f} max {max(calls, default=0)}"
            )
            cpu0 = stack_cpu_s()
            bare_wall, bare_durations = await bare(bs, args.n, k, args.timeout)
            bare_cpu = (stack_cpu_s() - cpu0) / args.n
            bare_tput = args.n / bare_wall if bare_wall > 0 else 0.0
            print(
                f"bare: {args.n} workflows x {k} no-op activities in {bare_wall:.2f}s; per workflow "
                f"p50 {percentile(bare_durations, 50):.2f}s p95 {percentile(bare_durations, 95):.2f}s"
            )
        print("stack stopped", flush=True)
    ratio = lc_tput / bare_tput if bare_tput else 0.0
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"stack CPU (this process and its descendants, bridges included): {lc_cpu:.2f} CPU-s per lifecycle, "
        f"{bare_cpu:.2f} per bare workflow; machine load average at the end {load:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"lifecycle throughput: {lc_tput:.2f} lifecycles/s")
    print(f"bare throughput: {bare_tput:.2f} workflows/s")
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"lifecycle/bare throughput ratio: {ratio:.3f} (target >= {TARGET_RATIO}; {verdict} target)")

    def draw(fig: object) -> None:
        ax = fig.add_subplot(1, 1, 1)  # type: ignore[attr-defined]
        ax.bar(["lifecycle", "bare"], [lc_tput, bare_tput])
        ax.set_ylabel("per second")
        ax.set_title(f"n={args.n}, ratio {ratio:.2f} (target {TARGET_RATIO})")

    plot_note(PLOTS / "lifecycle_throughput.png", draw)
    return 0 if errors == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
