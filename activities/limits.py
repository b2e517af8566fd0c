"""Account limits for the workflows: admission (quotas, lifetimes) and the `AccountLimits` settings workflow."""

from __future__ import annotations

from temporalio import activity

from activities.errors import AdmissionRefused
from activities.registry import _translate_errors
from contracts.limits import AccountLimits, Admission, Admitted, LimitsChange
from contracts.spec import SpecError
from store.account_limits import AccountLimitsStore, OverQuota
from store.registry import Registry

__all__ = ["LimitsActivities"]


class LimitsActivities:
    """Plain `def` activities (SQLAlchemy is synchronous); database errors are the registry's."""

    def __init__(self, limits: AccountLimitsStore, registry: Registry) -> None:
        self.limits = limits
        self.registry = registry

    @activity.defn
    def admit_agent(self, admission: Admission) -> Admitted:
        """Register the agent within its account's quotas, or refuse it (not retried) naming the quota and usage."""
        try:
            with _translate_errors("admit_agent"):
                try:
                    return self.limits.admit(self.registry, admission)
                except SpecError as err:  # a lifetime above the account's maximum: the agent's fault, not the store's
                    raise AdmissionRefused(str(err)) from None
        except OverQuota as err:
            raise AdmissionRefused(str(err)) from None

    @activity.defn
    def change_limits(self, change: LimitsChange) -> AccountLimits:
        """Show or apply one change; idempotent, so a retry is harmless. A bad change is refused (not retried)."""
        with _translate_errors("change_limits"):
            return self.limits.change(change)
