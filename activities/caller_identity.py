"""The identity Temporal recorded for the sender of a decision, read from the workflow's own history.

Workflow code cannot see who sent a signal or an update; the frontend stores the caller's `identity` in the
WorkflowExecutionSignaled event (`identity`) and in the WorkflowExecutionUpdateAccepted event
(`accepted_request.meta.identity`). What that identity proves depends on the deployment: deploy/approver-identity.md.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from contracts.approver_policy import CallerLookup

__all__ = ["CallerIdentityActivities"]

_SIGNALED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
_UPDATE_ACCEPTED = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED


class CallerIdentityActivities:
    def __init__(self, temporal: Client) -> None:
        self.temporal = temporal

    @activity.defn
    async def caller_identity(self, lookup: CallerLookup) -> str:
        """The recorded identity ("" when the caller sent none). Read-only, so retries are harmless; an RPC error
        is retried by Temporal, and an event not (yet) found too, a few times (the workflow's retry policy)."""
        handle = self.temporal.get_workflow_handle(lookup.workflow_id, run_id=lookup.run_id)
        seen = 0
        async for event in handle.fetch_history_events():
            if lookup.update_id and event.event_type == _UPDATE_ACCEPTED:
                request = event.workflow_execution_update_accepted_event_attributes.accepted_request
                if request.meta.update_id == lookup.update_id:
                    return str(request.meta.identity)
            elif not lookup.update_id and event.event_type == _SIGNALED:
                signaled = event.workflow_execution_signaled_event_attributes
                if signaled.signal_name == lookup.handler:
                    seen += 1
                    if seen == lookup.signal_seq:
                        return str(signaled.identity)
        raise ApplicationError(
            f"no {'update ' + lookup.update_id if lookup.update_id else lookup.handler + ' signal'} event found in "
            f"{lookup.workflow_id}",
            type="CallerEventNotFound",
        )
