"""The chaos run's stack: the one development stack (devstack/stack.py) with each server one the run can disrupt.

Temporal's dev server keeps its state in a file; OpenBao runs on Raft storage so a restart keeps every secret and
token; cloudsim answers for the three clouds with its fault rolls seeded; and the worker is its own process
(`lobstack worker`, configured from the environment exactly as in production) so it can be killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from activities.cloud.regions import CLOUD_PROVIDERS
from devstack import DevStackError, OpenBaoServer, WorkerProcess
from devstack.stack import DevStack, StackOptions, dev_stack

# Calls per second our budget allows each cloud in a chaos run, and the simulator's limit to match (x2: only the
# injected storms answer 429). The documented budgets would make a 200-lifecycle run last an hour on Hetzner alone;
# the API budget bench (bench/api_budget.py) measures those.
CHAOS_BUDGET_CALLS_PER_S = 20.0


@dataclass
class ChaosStack:
    """The stack, and the two parts of it the run disrupts, typed as what they are here."""

    dev: DevStack
    openbao: OpenBaoServer
    worker: WorkerProcess


def chaos_options(*, seed: int, boot_latency_s: float, home: Path, database_url: str | None) -> StackOptions:
    limit = int(CHAOS_BUDGET_CALLS_PER_S * 2)
    limits: dict[str, dict[str, object]] = {p: {"limit": limit, "window_s": 1.0} for p in CLOUD_PROVIDERS}
    limits["digitalocean"]["minute_limit"] = limit * 60  # its second window, 250/min by default, scaled alike
    return StackOptions(
        providers=CLOUD_PROVIDERS,
        worker="process",
        database_url=database_url or f"sqlite:///{home / 'registry.db'}",
        api_budgets=dict.fromkeys(CLOUD_PROVIDERS, CHAOS_BUDGET_CALLS_PER_S),
        boot_latency_s=boot_latency_s,
        sim_seed=seed,
        sim_rate_limits=limits,
        temporal_state=home / "temporal.db",
        restartable_vault=True,
        approvers=("chaos",),
    )


@contextlib.asynccontextmanager
async def chaos_stack(
    home: Path, *, seed: int, boot_latency_s: float, database_url: str | None = None
) -> AsyncIterator[ChaosStack]:
    options = chaos_options(seed=seed, boot_latency_s=boot_latency_s, home=home, database_url=database_url)
    async with dev_stack(home, options) as dev:
        if not isinstance(dev.openbao, OpenBaoServer) or dev.worker is None:
            raise DevStackError("chaos needs a restartable OpenBao and a worker process")
        yield ChaosStack(dev, dev.openbao, dev.worker)
