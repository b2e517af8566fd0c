"""KeyRotation: rotate every agent's Transit key, rewrap its stored data, then raise min_decryption_version.

Run by the `lobstack-key-rotation` schedule (every 90 days by default) or on demand (`lobstack keys rotate`). Agents go
to activities in batches, a few batches at a time; each batch is idempotent, so a retry or a worker crash costs at most
repeated reads. The workflow carries agent ids and counts only.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

from contracts.workflow_names import KEY_ROTATION

with workflow.unsafe.imports_passed_through():
    from activities.maintenance.rotation import RotationActivities
    from contracts.maintenance_models import (
        REPORT_IDS_MAX,
        RotationBatch,
        RotationBatchResult,
        RotationInput,
        RotationResult,
    )
    from workflows.inputs import start_input
    from workflows.retries import MAINTENANCE_RETRY


# Auto-upgrade: a short scheduled run moves to the current release at its next task; it keeps no long wait.
@workflow.defn(name=KEY_ROTATION, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class KeyRotationWorkflow:
    @workflow.run
    async def run(self, *args: Any) -> RotationResult:
        request = start_input(args, RotationInput)
        info = workflow.info()
        started_at = workflow.now()
        workflow.set_current_details("Listing agents' Transit keys")
        targets = await workflow.execute_activity_method(
            RotationActivities.list_rotation_targets,
            request,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=MAINTENANCE_RETRY,
        )
        size = max(1, request.batch_size)
        batches = [targets.agent_ids[i : i + size] for i in range(0, len(targets.agent_ids), size)]
        result = RotationResult(agents=len(targets.agent_ids))
        parallel = max(1, request.parallel_batches)
        for wave in range(0, len(batches), parallel):
            workflow.set_current_details(
                f"Rotating keys: batch {wave + 1}-{min(wave + parallel, len(batches))} of {len(batches)}"
            )
            done: list[RotationBatchResult] = await asyncio.gather(
                *(
                    workflow.execute_activity_method(
                        RotationActivities.rotate_keys,
                        RotationBatch(run_id=info.run_id, started_at=started_at, agent_ids=ids),
                        start_to_close_timeout=timedelta(minutes=10),
                        heartbeat_timeout=timedelta(minutes=1),
                        retry_policy=MAINTENANCE_RETRY,
                    )
                    for ids in batches[wave : wave + parallel]
                )
            )
            for batch in done:
                for agent in batch.agents:
                    result.keys_rotated += int(agent.rotated)
                    result.rewrapped += agent.rewrapped
                    result.unreadable += agent.unreadable
                    result.min_raised += int(agent.min_raised)
                    if agent.rotated and not agent.min_raised and len(result.held_back) < REPORT_IDS_MAX:
                        result.held_back.append(agent.agent_id)
                    if agent.error and len(result.failed) < REPORT_IDS_MAX:
                        result.failed.append(agent.agent_id)
        workflow.set_current_details(
            f"Done: {result.keys_rotated} key(s) rotated, {result.rewrapped} item(s) rewrapped"
        )
        return result
