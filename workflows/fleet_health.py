"""FleetHealth: one batched probe of every running agent; only a change of health signals its lifecycle.

Run every 30 s by the `lobstack-fleet-health` schedule with overlap SKIP: a slow run is never stacked. One activity
per run probes the whole fleet with bounded concurrency (never one timer per agent); the signalling rule is in
activities/maintenance/fleet.py. A failed run is not retried at length: the next scheduled run is the retry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior

from contracts.workflow_names import FLEET_HEALTH

with workflow.unsafe.imports_passed_through():
    from activities.maintenance.fleet import FleetActivities
    from contracts.maintenance_models import FleetHealthInput, FleetHealthResult
    from workflows.inputs import start_input
    from workflows.retries import FLEET_PROBE_RETRY


# Auto-upgrade: a short scheduled run moves to the current release at its next task; it keeps no long wait.
@workflow.defn(name=FLEET_HEALTH, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class FleetHealthWorkflow:
    @workflow.run
    async def run(self, *args: Any) -> FleetHealthResult:
        request = start_input(args, FleetHealthInput)
        result = await workflow.execute_activity_method(
            FleetActivities.check_fleet,
            request,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(seconds=30),
            retry_policy=FLEET_PROBE_RETRY,
        )
        workflow.set_current_details(
            f"Probed {result.probed}: {result.healthy} healthy, {result.unhealthy} unhealthy; "
            f"signalled {result.signalled}"
        )
        return result
