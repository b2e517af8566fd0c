"""The bare baseline: a workflow that runs K no-op activities one after another, nothing else."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow


@activity.defn(name="bench_noop")
def noop(i: int) -> int:
    return i


@workflow.defn(name="BenchBare")
class BareWorkflow:
    @workflow.run
    async def run(self, activities: int) -> int:
        done = 0
        for i in range(activities):
            done += (
                1 if await workflow.execute_activity(noop, i, start_to_close_timeout=timedelta(seconds=30)) == i else 0
            )
        return done
