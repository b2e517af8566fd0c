"""OrphanSweep: remove VMs and Vault state of agents that no running lifecycle owns; the backstop for terminated
workflows and lost state. Run hourly by the `lobstack-orphan-sweep` schedule, or by `lobstack sweep [--dry-run]`.

The find activity lists resources before lifecycles (see activities/maintenance/sweep.py); removal re-checks each
candidate's lifecycle just before deleting, reuses AgentVault.destroy and the provider's delete, and audits each agent
as `orphan-sweep`. Then warm pools' VMs and identities that no running pool holds
(activities/maintenance/pool_sweep.py). A dry run reports the same counts and changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

from contracts.workflow_names import ORPHAN_SWEEP

with workflow.unsafe.imports_passed_through():
    from activities.maintenance.pool_sweep import PoolSweepActivities
    from activities.maintenance.sweep import SweepActivities
    from contracts.maintenance_models import RemoveOrphans, SweepInput, SweepResult
    from workflows.inputs import start_input
    from workflows.retries import MAINTENANCE_RETRY


# Histories recorded before the sweep also removed what no warm pool holds replay without that step.
PATCH_SWEEP_POOLS = "sweep-pools"


# Auto-upgrade: a short scheduled run moves to the current release at its next task; it keeps no long wait.
@workflow.defn(name=ORPHAN_SWEEP, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class OrphanSweepWorkflow:
    @workflow.run
    async def run(self, *args: Any) -> SweepResult:
        request = start_input(args, SweepInput)
        workflow.set_current_details("Listing managed VMs, Vault state and stored data, then running lifecycles")
        report = await workflow.execute_activity_method(
            SweepActivities.find_orphans,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=MAINTENANCE_RETRY,
        )
        result = SweepResult(
            dry_run=request.dry_run, agents_seen=report.agents_seen, live=report.live, truncated=report.truncated
        )
        size = max(1, request.batch_size)
        for start in range(0, len(report.orphans), size):
            verb = "Reporting" if request.dry_run else "Removing"
            workflow.set_current_details(f"{verb} orphans {start + 1}-{start + size} of {len(report.orphans)}")
            counts = await workflow.execute_activity_method(
                SweepActivities.remove_orphans,
                RemoveOrphans(
                    run_id=workflow.info().run_id,
                    dry_run=request.dry_run,
                    orphans=report.orphans[start : start + size],
                ),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=2),
                retry_policy=MAINTENANCE_RETRY,
            )
            result.found.add(counts)
        if workflow.patched(PATCH_SWEEP_POOLS):
            workflow.set_current_details("Listing warm pools' VMs and identities, then the pools that hold them")
            result.pools = await workflow.execute_activity_method(
                PoolSweepActivities.sweep_pools,
                request,
                start_to_close_timeout=timedelta(minutes=10),
                retry_policy=MAINTENANCE_RETRY,
            )
        workflow.set_current_details(
            f"Done: {result.found.agents} orphaned agent(s), {len(result.pools.agent_ids)} orphaned pool slot(s)"
            f"{' (dry run: nothing removed)' if request.dry_run else ''}"
        )
        return result
