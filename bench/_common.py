"""Shared by the benches: the header, the stack (dev_stack with a raised API budget), percentiles."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from clients.client import LobstackClient  # noqa: E402
from devstack.stack import DevStack, StackOptions, dev_stack  # noqa: E402
from workflows.queues import WORKFLOW_QUEUE  # noqa: E402

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
    options = StackOptions(boot_latency_s=boot_latency_s, codec=False)
    if budget_calls_per_s is not None:
        options = replace(
            options,
            api_budgets={PROVIDER: budget_calls_per_s},
            sim_rate_limits={PROVIDER: {"limit": max(30, int(budget_calls_per_s)), "window_s": 1.0}},
        )
    async with dev_stack(home, options) as dev:
        yield BenchStack(dev, LobstackClient(dev.client, task_queue=WORKFLOW_QUEUE), WORKFLOW_QUEUE)


def stack_cpu_s() -> float:
    """CPU seconds used so far by this process and every descendant (Temporal, OpenBao, cloudsim, the bridges),
    reaped ones included (through their parents' cutime/cstime): unlike wall time, it does not move with whatever
    else the machine is running. Linux /proc only; NaN elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else []:
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), counting from state = 0.
        stats[int(entry.name)] = (int(fields[1]), sum(int(f) for f in fields[11:15]) / tick)
    if not stats:
        return float("nan")
    tree, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in stats.items():
            if ppid == parent and pid not in tree:
                tree.add(pid)
                frontier.append(pid)
    return sum(stats[pid][1] for pid in tree if pid in stats)


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return max(0.0, self.end - time.monotonic())


def plot_note(path: Path, draw: object) -> None:
    """Write a PNG with matplotlib when it is importable; otherwise say so."""
    try:
        import matplotlib  # type: ignore[import-not-found]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found]
    except ImportError:
        print("plot: skipped (matplotlib is not installed)")
        return
    fig = plt.figure(figsize=(7, 4))
    draw(fig)  # type: ignore[operator]
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"plot: {path}")
