"""The worker process of the fleet health bench: the real FleetHealth workflow and check_fleet activity, nothing else.

    .venv/bin/python bench/_fleet_worker.py --address HOST:PORT --database-url URL --task-queue Q [--profile OUT]

Built like workers/worker.py builds the workflow queue's worker (thread pool executor, ErrorTranslation interceptor,
the same concurrency), minus the lifecycle's activities, which need Vault and clouds and never run here. Runs in a
process of its own so the bench can read its CPU time from /proc. `--profile` runs it under cProfile (the event loop
thread, where the probing happens) and writes the stats at exit.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import cProfile
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from temporalio.client import Client
from temporalio.worker import Worker

from activities.maintenance.fleet import FleetActivities
from store import Registry
from workers.interceptors import ErrorTranslation
from workers.redaction import configure_logging
from workflows.fleet_health import FleetHealthWorkflow

MAX_CONCURRENT_ACTIVITIES = 64  # workers/worker.py's default


async def run(address: str, database_url: str, task_queue: str) -> None:
    configure_logging()
    client = await Client.connect(address)
    registry = Registry.from_url(database_url)
    fleet = FleetActivities(registry=registry, temporal=client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    with concurrent.futures.ThreadPoolExecutor(max_workers=MAX_CONCURRENT_ACTIVITIES) as executor:
        worker = Worker(
            client,
            task_queue=task_queue,
            workflows=[FleetHealthWorkflow],
            activities=[fleet.check_fleet],
            activity_executor=executor,
            interceptors=[ErrorTranslation()],
            max_concurrent_activities=MAX_CONCURRENT_ACTIVITIES,
        )
        async with worker:
            print("ready", flush=True)
            await stop.wait()
    registry.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--task-queue", required=True)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        asyncio.run(run(args.address, args.database_url, args.task_queue))
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
