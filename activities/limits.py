"""Account limits for the workflows: admission (quotas, lifetimes) and the `AccountLimits` settings workflow."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace

from temporalio import activity

from activities.cloud.base import CloudProvider
from activities.cloud.catalog import plan_name
from activities.errors import AdmissionRefused, LobstackError, PlanNotOffered
from activities.registry import _translate_errors
from contracts.limits import AccountLimits, Admission, Admitted, LimitsChange
from contracts.regions import placements
from contracts.spec import SpecError
from store.account_limits import AccountLimitsStore, OverQuota
from store.registry import Registry

__all__ = ["LimitsActivities"]


class LimitsActivities:
    """Plain `def` activities (SQLAlchemy is synchronous); database errors are the registry's."""

    def __init__(
        self, limits: AccountLimitsStore, registry: Registry, providers: Mapping[str, CloudProvider] | None = None
    ) -> None:
        self.limits = limits
        self.registry = registry
        self.providers = dict(providers or {})

    def priced(self, admission: Admission, *, capped: bool = True) -> Admission:
        """The admission with its VM's monthly list price per currency, from the providers' catalogs (cached): the
        most any candidate placement costs, as the agent may land on any.

        A placement that cannot be priced costs nothing here: its location does not sell the size (the create there
        fails as PlanNotOffered), or the provider refuses us (a bad token: the create fails the same way, saying so).
        A catalog that cannot be read right now (5xx, 429, timeout) is retried when the account caps its spend
        (`capped`), so a passing outage cannot slip an agent past a cap; without a cap it costs nothing here."""
        cents: dict[str, int] = {}
        provider = admission.provider
        candidates = (
            [] if provider == "local" else placements(provider, admission.region, exact_only=admission.strict_region)
        )
        unreadable: set[str] = set()
        for place in candidates:
            cloud = self.providers.get(place.provider)
            if cloud is None or place.provider in unreadable:
                continue
            try:
                price = cloud.monthly_price(place.code, plan_name(place.provider, admission.size))
            except PlanNotOffered:
                continue
            except LobstackError as err:
                if err.retryable and capped:
                    raise
                activity.logger.warning("agent %s not priced on %s: %s", admission.agent_id, place.provider, err)
                unreadable.add(place.provider)  # its other locations are in the same catalog
                continue
            amount = math.ceil(price.amount * 100)
            cents[price.currency] = max(cents.get(price.currency, 0), amount)
        return replace(admission, monthly_usd_cents=cents.get("USD", 0), monthly_eur_cents=cents.get("EUR", 0))

    @activity.defn
    def admit_agent(self, admission: Admission) -> Admitted:
        """Register the agent within its account's quotas, or refuse it (not retried) naming the quota and usage."""
        try:
            with _translate_errors("admit_agent"):
                try:
                    limits = self.limits.get(admission.account_id)
                    capped = bool(limits.max_monthly_usd or limits.max_monthly_eur)
                    return self.limits.admit(self.registry, self.priced(admission, capped=capped))
                except SpecError as err:  # a lifetime above the account's maximum: the agent's fault, not the store's
                    raise AdmissionRefused(str(err)) from None
        except OverQuota as err:
            raise AdmissionRefused(str(err)) from None

    @activity.defn
    def change_limits(self, change: LimitsChange) -> AccountLimits:
        """Show or apply one change; idempotent, so a retry is harmless. A bad change is refused (not retried)."""
        with _translate_errors("change_limits"):
            return self.limits.change(change)
