"""The account's approval policy, for the workflows (read at every decision) and the `ApproverSettings` workflow."""

from __future__ import annotations

from temporalio import activity

from activities.registry import _translate_errors
from contracts.approver_policy import AccountApprovalPolicy, ApproverChange
from store.approval_policies import ApprovalPolicies

__all__ = ["ApproverPolicyActivities"]


class ApproverPolicyActivities:
    """Plain `def` activities (SQLAlchemy is synchronous); errors are the registry's (retryable or not on purpose)."""

    def __init__(self, policies: ApprovalPolicies) -> None:
        self.policies = policies

    @activity.defn
    def account_policy(self, account_id: str) -> AccountApprovalPolicy:
        """The account's approvers and policy as they are now: a removed approver stops counting at once."""
        with _translate_errors("account_policy"):
            return self.policies.get(account_id)

    @activity.defn
    def change_approvers(self, change: ApproverChange) -> AccountApprovalPolicy:
        """Apply one change; idempotent, so a retry is harmless. A bad change is refused (not retried)."""
        with _translate_errors("change_approvers"):
            return self.policies.change(change)
