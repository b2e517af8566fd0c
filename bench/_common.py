"""Shared by the benches: the header, the stack (dev_stack + a bench worker with a raised API budget), percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from activities.cloud.base import CloudProvider  # noqa: E402
from activities.secrets import VaultSettings  # noqa: E402
from clients.client import LobstackClient  # noqa: E402
from workers.dev import DevStack, dev_stack  # noqa: E402
from workers.main import build_services  # noqa: E402
from workers.settings import WorkerSettings  # noqa: E402
from workers.worker import default_providers, running_workers  # noqa: E402

PROVIDER = "vultr"


def header(title: str, **params: object) -> None:
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
    """`dev_stack(codec=False)` (Temporal dev server, OpenBao, cloudsim, gateway, its worker on `lobstack`), plus a
    bench worker on its own queue whose Vultr adapter has the budget `LOBSTACK_API_BUDGET_VULTR=<budget>`.

    Why a second worker: dev_stack builds its providers from `sim.env()` only (workers/dev.py), so an
    LOBSTACK_API_BUDGET_VULTR in os.environ never reaches it, and its cloud queue is already rate-limited server-side
    at the documented 15 activities/s. The bench worker is built the same way (build_services, default_providers,
    running_workers) with the override added to the simulator's env. cloudsim's own Vultr limit (30 req/s) is raised
    to the same figure so the simulator does not answer 429 to a budget the worker now allows.
    `budget_calls_per_s=None`: the documented budget on both sides (a plain dev_stack worker setup)."""
    if budget_calls_per_s is not None:
        os.environ[f"LOBSTACK_API_BUDGET_{PROVIDER.upper()}"] = str(budget_calls_per_s)
    async with dev_stack(home, boot_latency_s=boot_latency_s, codec=False) as dev:
        env = dict(dev.cloudsim.env())
        if budget_calls_per_s is not None:
            env[f"LOBSTACK_API_BUDGET_{PROVIDER.upper()}"] = str(budget_calls_per_s)
            await asyncio.to_thread(
                dev.cloudsim.configure,
                rate_limits={PROVIDER: {"limit": max(30, int(budget_calls_per_s)), "window_s": 1.0}},
            )
        settings = WorkerSettings(home=home, providers=(PROVIDER,), gateway_url=dev.gateway_url)
        providers: dict[str, CloudProvider] = dict(default_providers(replace(settings, providers=(PROVIDER,)), env))
        services = build_services(
            vault_settings=VaultSettings(addr=dev.openbao.addr, token=dev.openbao.root_token),
            database_url=dev.database_url,
            worker_settings=settings,
            providers=providers,
        )
        task_queue = f"bench-{uuid.uuid4().hex[:8]}"
        try:
            async with running_workers(dev.client, services, task_queue=task_queue):
                yield BenchStack(dev, LobstackClient(dev.client, task_queue=task_queue), task_queue)
        finally:
            services.registry.close()


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
    fig.savefig(path)
    print(f"plot: {path}")
