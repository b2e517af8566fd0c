"""An agent's monthly price at admission, from the providers' catalogs as cloudsim serves them through the real SDKs:
the most any candidate placement costs, per currency."""

from __future__ import annotations

import math
from typing import Any

from activities.cloud.providers import build_providers
from activities.limits import LimitsActivities
from contracts.limits import Admission
from contracts.regions import CLOUD_PROVIDERS, PLANS, placements


def _cents(providers: dict[str, Any], provider: str, region: str, size: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for place in placements(provider, region):
        price = providers[place.provider].monthly_price(place.code, PLANS[place.provider][size])
        found[price.currency] = max(found.get(price.currency, 0), math.ceil(price.amount * 100))
    return found


def test_an_agent_is_priced_at_its_dearest_candidate_placement(sim: Any) -> None:
    providers = build_providers(list(CLOUD_PROVIDERS), sim.env())
    acts = LimitsActivities(limits=None, registry=None, providers=providers)  # type: ignore[arg-type]
    hetzner = acts.priced(Admission("a", "acme", "n", "hetzner", "eu-central", "small"))
    expected = _cents(providers, "hetzner", "eu-central", "small")
    assert set(expected) == {"EUR"} and expected["EUR"] > 0
    assert (hetzner.monthly_eur_cents, hetzner.monthly_usd_cents) == (expected["EUR"], 0)

    auto = acts.priced(Admission("b", "acme", "n", "auto", "us-east", "large"))
    expected = _cents(providers, "auto", "us-east", "large")
    assert set(expected) == {"EUR", "USD"}
    assert (auto.monthly_eur_cents, auto.monthly_usd_cents) == (expected["EUR"], expected["USD"])
    local = acts.priced(Admission("c", "acme", "n", "local", "us-east", "large"))
    assert (local.monthly_eur_cents, local.monthly_usd_cents) == (0, 0)
