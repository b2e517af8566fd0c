"""Shared by the benches: the header, the stack (dev_stack with a raised API budget), percentiles."""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import os
import platform
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from clients.client import LobstackClient  # noqa: E402
from contracts.models import AgentState  # noqa: E402
from contracts.queues import WORKFLOW_QUEUE  # noqa: E402
from devstack.stack import (  # noqa: E402
    DevStack,
    StackOptions,
    dev_stack,
)
from store import Registry  # noqa: E402

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PROVIDER = "vultr"
# Where the benches write their plots: the README shows them from here.
PLOTS = REPO / "docs" / "bench"


def header(title: str, **params: object) -> None:
    """Print what runs where. Every bench starts here, so from here on SIGTERM unwinds like Ctrl-C: the servers a
    bench started stop with it instead of outliving it."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    print(f"== {title} ==")
    print(f"machine: cpu_count={os.cpu_count()} platform={platform.platform()} python={platform.python_version()}")
    print("params: " + " ".join(f"{k}={v}" for k, v in params.items()), flush=True)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), -(-len(ordered) * p // 100)))
    return ordered[int(rank) - 1]


@dataclass
class BenchStack:
    dev: DevStack
    client: LobstackClient
    task_queue: str


@contextlib.asynccontextmanager
async def bench_stack(
    home: Path, *, boot_latency_s: float, budget_calls_per_s: float | None
) -> AsyncIterator[BenchStack]:
    """The development stack without a codec: Temporal dev server, OpenBao, cloudsim, gateway and a worker.

    `budget_calls_per_s` raises the Vultr API budget and cloudsim's own Vultr limit with it, so the simulator does not
    answer 429 to calls the budget now allows; None keeps the documented budget on both sides.
    """
    compile_packages()
    options = StackOptions(boot_latency_s=boot_latency_s, codec=False)
    if budget_calls_per_s is not None:
        options = replace(
            options,
            api_budgets={PROVIDER: budget_calls_per_s},
            sim_rate_limits={PROVIDER: {"limit": max(30, int(budget_calls_per_s)), "window_s": 1.0}},
        )
    async with dev_stack(home, options) as dev:
        yield BenchStack(dev, LobstackClient(dev.client, task_queue=WORKFLOW_QUEUE), WORKFLOW_QUEUE)


def compile_packages() -> None:
    """Bytecode for every package of ours, as the image has it (pip compiles at install): a bench run from a shell
    with PYTHONDONTWRITEBYTECODE=1 would otherwise compile each workflow's module again in each new sandbox."""
    for package in sorted(p.parent for p in REPO.glob("*/__init__.py")):
        if package.name not in ("tests", "bench", "docs"):
            compileall.compile_dir(package, quiet=1)


def stack_cpu_by_process() -> dict[str, float]:
    """CPU seconds used so far by this process and every descendant, by what each is: `worker` (this process: the
    bench's client and the in-process worker), `temporal`, `openbao`, `cloudsim` (with the bridges of VMs already
    deleted, reaped through its cutime/cstime), `bridges` (of VMs still running), `gateway`, `other`. Unlike wall
    time, it does not move with whatever else the machine is running. Linux /proc only; empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), counting from state = 0.
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick, command)
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    split: dict[str, float] = {}
    for pid in tree & stats.keys():
        _, cpu, command = stats[pid]
        kind = "worker" if pid == os.getpid() else _process_kind(command)
        split[kind] = split.get(kind, 0.0) + cpu
    return split


def _process_kind(command: str) -> str:
    for kind, marks in _KINDS:
        if any(mark in command for mark in marks):
            return kind
    return "other"


_KINDS = (
    ("bridges", ("-m bridge",)),
    ("cloudsim", ("cloudsim",)),
    ("openbao", ("bao ",)),
    ("temporal", ("temporal",)),
    ("gateway", ("gateway",)),
)


def stack_cpu_s() -> float:
    """CPU seconds used so far by this process and every descendant; NaN where /proc is missing."""
    split = stack_cpu_by_process()
    return sum(split.values()) if split else float("nan")


def cpu_split_line(before: dict[str, float], after: dict[str, float], per: int = 1) -> str:
    """`worker 1.23, temporal 0.45, ...` CPU seconds between two readings, divided by `per`, largest first."""
    moved = {k: (after.get(k, 0.0) - before.get(k, 0.0)) / per for k in after.keys() | before.keys()}
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(moved.items(), key=lambda kv: -kv[1]) if v > 0.0005)


class RunningWatch:
    """First time each agent of `account` is seen `running` in the registry, polled for all agents at once."""

    def __init__(self, registry: Registry, account: str, interval_s: float = 0.05) -> None:
        self.registry = registry
        self.account = account
        self.interval_s = interval_s
        self._seen: dict[str, asyncio.Event] = {}

    def _event(self, agent_id: str) -> asyncio.Event:
        return self._seen.setdefault(agent_id, asyncio.Event())

    async def seen(self, agent_id: str, deadline: Deadline) -> None:
        await asyncio.wait_for(self._event(agent_id).wait(), timeout=max(0.1, deadline.left()))

    async def run(self) -> None:
        while True:
            running = await asyncio.to_thread(self.registry.list_agents, self.account, [AgentState.RUNNING])
            for agent in running:
                self._event(agent.agent_id).set()
            await asyncio.sleep(self.interval_s)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def plot_note(path: Path, draw: Callable[[Figure], None]) -> None:
    """Write a PNG with matplotlib when it is importable; otherwise say so."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("plot: skipped (matplotlib is not installed)")
        return
    fig = plt.figure(figsize=(7, 4))
    draw(fig)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")
