"""Who sent a decision, as Temporal recorded it: for the workflows that wait for a person."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.caller_identity import CallerIdentityActivities
    from contracts.approver_policy import CallerLookup
    from workflows.retries import IDENTITY_RETRY

__all__ = ["UNKNOWN_IDENTITY", "caller_identity", "identity_refusal"]

UNKNOWN_IDENTITY = "unknown"


async def caller_identity(handler: str, signal_seq: int) -> str:
    """The identity recorded in the history event of this decision: the current update's, or the `signal_seq`-th
    signal named `handler`. UNKNOWN_IDENTITY when it cannot be read (never fails the decision's handler)."""
    info = workflow.info()
    update = workflow.current_update_info()
    lookup = CallerLookup(
        workflow_id=info.workflow_id,
        run_id=info.run_id,
        handler=handler,
        signal_seq=0 if update else signal_seq,
        update_id=update.id if update else "",
    )
    try:
        found: str = await workflow.execute_activity_method(
            CallerIdentityActivities.caller_identity,
            lookup,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=IDENTITY_RETRY,
        )
    except ActivityError as err:
        workflow.logger.warning("could not read who sent %s: %s", handler, err)
        return UNKNOWN_IDENTITY
    return found or UNKNOWN_IDENTITY


def identity_refusal(declared: str, identity: str) -> str:
    """With the account's require_identity_match: why a decision whose declared approver is not its sender fails."""
    if identity == declared:
        return ""
    return (
        f"identity: the account requires the approver to be the caller; Temporal recorded the caller as "
        f"{identity!r}, the body names {declared!r}"
    )
