"""Fleet health: N simulated running agents checked every 30 s by the real schedule, workflow and activity.

    .venv/bin/python bench/fleet_health.py [--agents 10000] [--minutes 5] [--database-url URL] [--profile]

- Registry: N rows in state `running` (SQLite file by default; `--database-url postgresql://...` creates a throwaway
  database on that server and drops it afterwards, so a shared database is never touched).
- Fleet: one process (bench/_fleet_server.py) answers `/health` for every agent, each on a loopback address of its
  own; `--unhealthy` agents answer 503 always and `--flapping` ones every other 30 s window, so every run signals.
  Their lifecycles do not exist: those signals get NOT_FOUND, which check_fleet counts as `closed` and saves.
- Temporal dev server (devstack/servers.py) and a worker process of its own (bench/_fleet_worker.py) running
  FleetHealth + check_fleet; the schedule is `lobstack-fleet-health` exactly as workers/schedules.py builds it.
- One warm-up run first (not measured): it sees every agent for the first time and saves N health rows, as a
  monitor does once; the measured window is the steady state of a fleet whose health is already known.

Prints per-run duration, probe latency percentiles (computed by check_fleet per run; the median over runs of each, and
the worst run) and the worker's CPU seconds per wall second from /proc/<pid>/stat over the whole window, idle time
between runs included. Target: <= 0.5 core. Writes docs/bench/fleet_health.png.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy
from temporalio.client import Client, WorkflowExecutionStatus

import devstack
from bench._common import PLOTS, header, percentile, plot_note
from bench._fleet_server import fleet_agent_id, fleet_ip, unhealthy_sets
from contracts.maintenance_models import FLEET_HEALTH_SCHEDULE, FleetHealthInput, FleetHealthResult
from contracts.models import AgentState
from store import Registry, upgrade_database
from store.tables import AGENTS
from workers.schedules import build_schedules
from workflows.fleet_health import FleetHealthWorkflow

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BENCH = Path(__file__).resolve().parent
TARGET_CORES = 0.5
CLK_TCK = os.sysconf("SC_CLK_TCK")
SAMPLE_EVERY_S = 1.0


@dataclass
class Run:
    started: datetime
    duration_s: float
    result: FleetHealthResult


@dataclass
class CpuSamples:
    times: list[float] = field(default_factory=list)  # monotonic seconds
    cpu: list[float] = field(default_factory=list)  # the process's user + system CPU seconds so far


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def sample_cpu(pid: int, into: CpuSamples, stop: asyncio.Event) -> None:
    while True:
        into.times.append(time.monotonic())
        into.cpu.append(cpu_seconds(pid))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
            into.times.append(time.monotonic())
            into.cpu.append(cpu_seconds(pid))
            return


# --- processes -------------------------------------------------------------------------------------------------------


async def until_ready(proc: devstack.Process, marker: str, timeout_s: float = 60.0) -> None:
    """Wait for the process to print `marker` at the start of a line."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while time.monotonic() < deadline:
        if any(line.startswith(marker) for line in proc.log_path.read_text(errors="replace").splitlines()):
            return
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail(30)}")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s:.0f}s:\n{proc.log_tail(30)}")


@contextlib.contextmanager
def stopping(proc: devstack.Process) -> Iterator[devstack.Process]:
    try:
        yield proc
    finally:
        proc.stop(timeout=30)


@contextlib.contextmanager
def database(url: str | None, tmp: Path) -> Iterator[str]:
    """The registry's URL: an SQLite file under `tmp`, or a fresh PostgreSQL database dropped at the end."""
    if url is None:
        yield f"sqlite:///{tmp / 'registry.db'}"
        return
    admin = sqlalchemy.make_url(url)
    if not admin.drivername.startswith("postgresql"):
        raise SystemExit("--database-url: only postgresql:// URLs (SQLite is the default)")
    admin = admin.set(drivername="postgresql+psycopg")
    name = f"lobstack_fleet_bench_{uuid.uuid4().hex[:10]}"
    engine = sqlalchemy.create_engine(admin, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


def seed(database_url: str, agents: int, port: int) -> None:
    """N agents in state running, each at its own loopback address, through the registry's schema and engine."""
    now = datetime.now(UTC)
    rows = [
        {
            "agent_id": fleet_agent_id(i),
            "account_id": f"acct-{i % 10}",
            "name": f"agent-{i}",
            "provider": "vultr",
            "region": "eu-central",
            "size": "small",
            "state": AgentState.RUNNING.value,
            "vm_id": f"vm-{i}",
            "address": f"http://{fleet_ip(i)}:{port}",
            "health": "healthy",
            "created_at": now,
            "updated_at": now,
            "last_error": "",
        }
        for i in range(agents)
    ]
    upgrade_database(database_url)
    with Registry.from_url(database_url) as registry, registry.engine.begin() as conn:
        conn.execute(sqlalchemy.insert(AGENTS), rows)


# --- the measurement -------------------------------------------------------------------------------------------------


async def runs_of(client: Client, task_queue: str, since: datetime) -> tuple[list[Run], int]:
    """The runs started since `since` that completed, and how many others ended otherwise (failed, timed out)."""
    runs, failed = [], 0
    query = f"WorkflowType = 'FleetHealth' AND TaskQueue = '{task_queue}'"
    async for wf in client.list_workflows(query):
        if wf.start_time < since:
            continue
        if wf.status != WorkflowExecutionStatus.COMPLETED or wf.close_time is None:
            failed += 1
            continue
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=FleetHealthResult)
        result = await handle.result()
        runs.append(Run(wf.start_time, (wf.close_time - wf.start_time).total_seconds(), result))
    return sorted(runs, key=lambda r: r.started), failed


async def finish_runs(client: Client, task_queue: str) -> None:
    query = f"WorkflowType = 'FleetHealth' AND TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for wf in client.list_workflows(query):
        await client.get_workflow_handle(wf.id, run_id=wf.run_id).result()


@contextlib.asynccontextmanager
async def schedule(client: Client, task_queue: str, every_s: float) -> AsyncIterator[None]:
    # The production definition (spec, overlap skip, input); only the task queue and, when asked, the interval differ.
    every = timedelta(seconds=every_s)
    definition = build_schedules(task_queue=task_queue, health_every=every)[FLEET_HEALTH_SCHEDULE]
    handle = await client.create_schedule(FLEET_HEALTH_SCHEDULE, definition)
    try:
        yield
    finally:
        await handle.delete()


def print_profile(path: Path, top: int = 30) -> None:
    print(f"profile of the worker's event loop thread ({path}), top {top} by cumulative time:")
    stats = pstats.Stats(str(path))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


async def bench(args: argparse.Namespace, tmp: Path, database_url: str) -> int:
    port = devstack.free_port()
    t0 = time.monotonic()
    seed(database_url, args.agents, port)
    print(f"registry: {args.agents} running agents seeded in {time.monotonic() - t0:.1f}s", flush=True)
    down, flap = unhealthy_sets(args.agents, args.unhealthy, args.flapping)
    python = sys.executable
    server_argv = [python, str(BENCH / "_fleet_server.py"), "--port", str(port), "--agents", str(args.agents)]
    server_argv += ["--unhealthy", str(args.unhealthy), "--flapping", str(args.flapping)]
    temporal = await asyncio.to_thread(devstack.start_temporal, tmp)
    with contextlib.ExitStack() as procs:
        procs.callback(temporal.stop)
        server = procs.enter_context(stopping(devstack.spawn("fleet server", server_argv, tmp / "fleet-server.log")))
        await until_ready(server, "ready")
        task_queue = f"fleet-bench-{uuid.uuid4().hex[:8]}"
        profile_path = tmp / "worker.prof"
        worker_argv = [python, str(BENCH / "_fleet_worker.py"), "--address", temporal.address]
        worker_argv += ["--database-url", database_url, "--task-queue", task_queue]
        if args.profile:
            worker_argv += ["--profile", str(profile_path)]
        worker_log = tmp / "worker.log"
        worker = procs.enter_context(stopping(devstack.spawn("worker", worker_argv, worker_log)))
        await until_ready(worker, "ready")
        client = await Client.connect(temporal.address)
        print(f"stack up in {time.monotonic() - t0:.1f}s (worker pid {worker.popen.pid})", flush=True)

        t = time.monotonic()
        warm: FleetHealthResult = await client.execute_workflow(
            FleetHealthWorkflow.run, FleetHealthInput(), id=f"fleet-warm-{uuid.uuid4().hex[:8]}", task_queue=task_queue
        )
        print(
            f"warm-up run (first sight of every agent, not measured): {time.monotonic() - t:.2f}s, "
            f"{warm.probed} probed, {warm.healthy} healthy, {warm.unhealthy} unhealthy, {warm.signalled} signalled, "
            f"{warm.closed} closed; probe p50 {warm.probe_p50_ms:.1f} ms p99 {warm.probe_p99_ms:.1f} ms",
            flush=True,
        )

        samples = CpuSamples()
        stop = asyncio.Event()
        since = datetime.now(UTC)
        sampler = asyncio.create_task(sample_cpu(worker.popen.pid, samples, stop))
        async with schedule(client, task_queue, args.interval):
            # The measurement window itself: the schedule fires on its own meanwhile.
            await asyncio.sleep(args.minutes * 60)
        # A run still in flight is finished and counted, so the CPU it spent is not charged to the others.
        await finish_runs(client, task_queue)
        stop.set()
        await sampler
        runs, failed_runs = await runs_of(client, task_queue, since)
        worker_alive = worker.popen.poll() is None
        worker.stop(timeout=30)
        tail = worker.log_tail(40)
    if not worker_alive:
        print(f"worker died during the run:\n{tail}")
        return 1

    wall = samples.times[-1] - samples.times[0]
    cores = (samples.cpu[-1] - samples.cpu[0]) / wall
    per_second = [
        (b_cpu - a_cpu) / (b_t - a_t)
        for a_t, b_t, a_cpu, b_cpu in zip(samples.times, samples.times[1:], samples.cpu, samples.cpu[1:], strict=False)
    ]
    durations = [r.duration_s for r in runs]
    p50s = [r.result.probe_p50_ms for r in runs]
    p95s = [r.result.probe_p95_ms for r in runs]
    p99s = [r.result.probe_p99_ms for r in runs]
    signalled = sum(r.result.signalled + r.result.closed for r in runs)
    failures = sum(r.result.signal_failures for r in runs)
    print(f"agents: {args.agents} ({len(down)} unhealthy, {len(flap)} flapping every {args.interval:.0f}s)")
    print(
        f"window: {wall:.1f}s; runs completed: {len(runs)}, failed: {failed_runs} "
        f"(schedule every {args.interval:.0f}s, overlap skip)"
    )
    if runs:
        print(
            f"per run: probed {statistics.median(r.result.probed for r in runs):.0f}, "
            f"signals sent {signalled} in all (closed lifecycles {sum(r.result.closed for r in runs)}, "
            f"failed {failures})"
        )
        print(
            f"run duration: p50 {percentile(durations, 50):.2f}s p95 {percentile(durations, 95):.2f}s "
            f"max {max(durations):.2f}s"
        )
        print(
            f"probe latency (median over runs): p50 {statistics.median(p50s):.1f} ms "
            f"p95 {statistics.median(p95s):.1f} ms p99 {statistics.median(p99s):.1f} ms; "
            f"worst run p99 {max(p99s):.1f} ms, max {max(r.result.probe_max_ms for r in runs):.1f} ms"
        )
    print(f"worker CPU: {samples.cpu[-1] - samples.cpu[0]:.1f}s over {wall:.1f}s; busiest second {max(per_second):.2f}")
    if runs:
        # With overlap skip a run longer than the interval lowers CPU/wall by skipping runs; this figure does not.
        per_run = (samples.cpu[-1] - samples.cpu[0]) / len(runs)
        probes = sum(r.result.probed for r in runs)
        print(
            f"worker CPU per run (idle time shared out): {per_run:.2f}s, {1000 * per_run * len(runs) / probes:.2f} ms "
            f"per probed agent; one run every {args.interval:.0f}s would need {per_run / args.interval:.3f} cores"
        )
    verdict = "meets" if cores <= TARGET_CORES else "BELOW"
    print(f"fleet health: {cores:.3f} CPU s per wall s (target <= {TARGET_CORES}; {verdict} target)")

    def draw(fig: Figure) -> None:
        ax1 = fig.add_subplot(2, 1, 1)
        xs = [t - samples.times[0] for t in samples.times[1:]]
        ax1.plot(xs, per_second, linewidth=0.8, label="worker CPU (per 1 s)")
        ax1.axhline(cores, color="tab:green", linestyle="-", label=f"mean {cores:.3f}")
        ax1.axhline(TARGET_CORES, color="tab:red", linestyle="--", label=f"target {TARGET_CORES}")
        ax1.set_ylabel("CPU s / wall s")
        ax1.set_xlabel("seconds into the window")
        ax1.set_title(f"fleet health: {args.agents} agents, every {args.interval:.0f}s")
        ax1.legend(fontsize=7, loc="upper right")
        ax2 = fig.add_subplot(2, 1, 2)
        idx = list(range(1, len(runs) + 1))
        for values, label in ((p50s, "p50"), (p95s, "p95"), (p99s, "p99")):
            ax2.plot(idx, values, marker="o", label=f"probe {label}")
        ax2.set_xlabel("run")
        ax2.set_ylabel("probe latency, ms")
        ax2.legend(fontsize=7)

    plot_note(PLOTS / "fleet_health.png", draw)
    if args.profile and profile_path.exists():
        print_profile(profile_path)
    return 0 if runs and failures == 0 and failed_runs == 0 else 1


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument(
        "--interval", type=float, default=30.0, help="schedule interval, seconds (default: the real 30)"
    )
    parser.add_argument("--unhealthy", type=int, default=10, help="agents answering 503 always")
    parser.add_argument("--flapping", type=int, default=10, help="agents unhealthy every other 30 s window")
    parser.add_argument("--database-url", help="postgresql://... server for a throwaway database (default: SQLite)")
    parser.add_argument("--profile", action="store_true", help="run the worker under cProfile and print the top")
    args = parser.parse_args()
    db = "sqlite" if args.database_url is None else "postgresql"
    params = {"agents": args.agents, "minutes": args.minutes, "interval_s": args.interval, "database": db}
    header("fleet health", **params, unhealthy=args.unhealthy, flapping=args.flapping, profile=args.profile)
    with (
        tempfile.TemporaryDirectory(prefix="lobstack-fleet-bench-") as tmp,
        database(args.database_url, Path(tmp)) as url,
    ):
        return await bench(args, Path(tmp), url)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
