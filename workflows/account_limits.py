"""AccountLimits: shows or changes one account's quotas and agent lifetimes (one activity).

A workflow rather than a database call so `LobstackClient` and the CLI need only Temporal: the worker holds the
registry. The change is validated by the caller first and again by the activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ApplicationError

from contracts.workflow_names import ACCOUNT_LIMITS

with workflow.unsafe.imports_passed_through():
    from activities.limits import LimitsActivities
    from contracts.limits import AccountLimits, LimitsChange, validate_limits_change
    from contracts.messages import MessageRefused, one_message
    from contracts.spec import SpecError
    from workflows.retries import REGISTRY_RETRY


# One activity, done in a moment: whichever release's workers are current may run it.
@workflow.defn(name=ACCOUNT_LIMITS, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class AccountLimitsWorkflow:
    @workflow.run
    async def run(self, *args: Any) -> AccountLimits:
        try:
            change = one_message(args, LimitsChange, example='{"account_id": "acme", "action": "show"}')
            validate_limits_change(change)
        except (MessageRefused, SpecError) as err:
            raise ApplicationError(f"invalid input: {err}", type="InvalidInput", non_retryable=True) from None
        return await workflow.execute_activity_method(
            LimitsActivities.change_limits,
            change,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REGISTRY_RETRY,
        )
