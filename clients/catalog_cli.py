"""`lobstack catalog`, and the catalog check `lobstack agent create` makes before it starts anything.

The CLI reads the providers' catalogs itself, through the same adapters and the same environment as a worker
(`HCLOUD_TOKEN`, `DIGITALOCEAN_ACCESS_TOKEN`, `VULTR_API_KEY` and their `*_ENDPOINT`s: `activities.cloud.providers`).
`LobstackClient` speaks only to Temporal, and a catalog is the provider's public price list, not the worker's state:
asking it through a workflow would add a workflow type and a round trip to read what one HTTP request answers. The
worker checks again at create (`CloudActivities.create_vm`), so an operator without cloud credentials in their shell
loses nothing but the early answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.cli_common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandFailed
from contracts.regions import CLOUD_PROVIDERS, LOCATIONS, PLANS, PROVIDER_NAMES, placements
from contracts.spec import REGIONS, SIZES, AgentSpec, SpecError

if TYPE_CHECKING:
    from activities.cloud.base import CloudProvider
    from activities.cloud.catalog import Offer

# The adapters (and their SDKs, a fifth of a second to import) load only when a command reads a catalog: every other
# command, and `agent create` for the local provider, starts without them.


@dataclass(frozen=True)
class Row:
    """A plan in a location of one of our regions; `offer` is None for one of our sizes the location does not sell."""

    region: str
    provider: str
    location: str
    size: str
    plan: str
    offer: Offer | None


def configured_providers(names: Iterable[str], env: Mapping[str, str]) -> dict[str, CloudProvider]:
    """The named providers this environment has credentials for (the local provider needs none)."""
    from activities.cloud.local import LocalProvider
    from activities.cloud.providers import build_providers
    from activities.errors import ProviderRejected

    found: dict[str, CloudProvider] = {}
    for name in names:
        if name == "local":
            # Its catalog is fixed: reading it never touches the state directory.
            found[name] = LocalProvider(state_dir=Path(os.devnull))
            continue
        try:
            found.update(build_providers([name], env))
        except ProviderRejected:
            continue  # no credentials here
    return found


def check_offered(spec: AgentSpec, env: Mapping[str, str]) -> None:
    """Refuse (SpecError on `size`, exit 2) a spec whose size none of its placements sells, listing what each sells.

    Only when every provider the spec may be placed on could be asked: one without credentials here might sell it, and
    the worker checks at create anyway. A provider that cannot be reached leaves the answer to the worker too.
    """
    if spec.provider == "local":
        return
    from activities.errors import PlanNotOffered, ProviderError

    wanted = CLOUD_PROVIDERS if spec.provider == "auto" else (spec.provider,)
    providers = configured_providers(wanted, env)
    if set(providers) != set(wanted):
        return
    refusals: list[str] = []
    for location in placements(spec.provider, spec.region, exact_only=spec.strict_region):
        try:
            providers[location.provider].offer(location.code, _plan(location.provider, spec.size))
        except PlanNotOffered as refused:
            refusals.append(str(refused).removeprefix("size: "))
            continue
        except ProviderError:
            return
        return
    if refusals:
        where = f"{spec.size} is sold in no location {spec.provider} has for {spec.region}"
        raise SpecError("size", f"{where}: {'; '.join(refusals)}")


def catalog_rows(providers: Mapping[str, CloudProvider], regions: Iterable[str], *, all_plans: bool) -> list[Row]:
    """Per region and location: our sizes (sold or not), then, with `all_plans`, the provider's other plans."""
    rows: list[Row] = []
    for region in regions:
        for name, provider in providers.items():
            codes = ["local"] if name == "local" else [loc.code for loc in LOCATIONS[region].get(name, ())]
            for code in codes:
                offers = {offer.plan: offer for offer in provider.offers(code)}
                for size in SIZES:
                    plan = _plan(name, size)
                    rows.append(Row(region, name, code, size, plan, offers.get(plan)))
                if all_plans:
                    rows += [Row(region, name, code, "", o.plan, o) for o in offers.values() if not o.size]
    return rows


def cmd_catalog(args: argparse.Namespace) -> int:
    if args.provider is not None and args.provider not in PROVIDER_NAMES:
        raise SpecError("provider", f"{args.provider!r} is not allowed; choose one of: {', '.join(PROVIDER_NAMES)}")
    if args.region is not None and args.region not in REGIONS:
        raise SpecError("region", f"{args.region!r} is not allowed; choose one of: {', '.join(REGIONS)}")
    from activities.cloud.providers import build_providers
    from activities.errors import ProviderError, ProviderRejected

    env = dict(os.environ)
    if args.provider is not None and args.provider != "local":
        try:
            providers = build_providers([args.provider], env)
        except ProviderRejected as err:
            raise CommandFailed(str(err), EXIT_USAGE) from None
    else:
        providers = configured_providers(PROVIDER_NAMES if args.provider is None else ("local",), env)
        skipped = [name for name in CLOUD_PROVIDERS if name not in providers and args.provider is None]
        if skipped:
            print(f"not shown (no credentials in the environment): {', '.join(skipped)}", file=sys.stderr)
    regions = [args.region] if args.region else list(REGIONS)
    try:
        rows = catalog_rows(providers, regions, all_plans=args.all_plans)
    except ProviderRejected as err:
        raise CommandFailed(str(err), EXIT_USAGE) from None
    except ProviderError as err:
        raise CommandFailed(str(err), EXIT_UNAVAILABLE) from None
    if args.json:
        print(json.dumps([_as_json(row) for row in rows], indent=2))
        return 0
    print(f"{'region':<13} {'provider':<13} {'location':<9} {'size':<7} {'plan':<19} {'vCPU':>4} {'memory':>8} "
          f"{'disk':>7} {'monthly':>14}")  # fmt: skip
    for row in rows:
        head = f"{row.region:<13} {row.provider:<13} {row.location:<9} {row.size or '-':<7} {row.plan:<19}"
        o = row.offer
        if o is None:
            print(f"{head} not sold here")
        else:
            print(f"{head} {o.vcpus:>4} {o.memory_mb / 1024:>5g} GB {o.disk_gb:>4} GB {o.monthly!s:>14}")
    return 0


def _plan(provider: str, size: str) -> str:
    # activities.cloud.catalog.plan_name, without importing the adapters' package for it.
    return PLANS[provider][size] if provider in PLANS else size


def _as_json(row: Row) -> dict[str, object]:
    shown: dict[str, object] = {
        "region": row.region,
        "provider": row.provider,
        "location": row.location,
        "size": row.size or None,
        "plan": row.plan,
        "sold": row.offer is not None,
    }
    if row.offer is not None:
        o = row.offer
        shown |= {
            "vcpus": o.vcpus,
            "memory_mb": o.memory_mb,
            "disk_gb": o.disk_gb,
            "monthly_price": str(o.monthly.amount),  # a string: a price is exact, JSON numbers are floats
            "currency": o.monthly.currency,
        }
    return shown


def add_catalog_commands(sub: Any) -> None:
    catalog = sub.add_parser(
        "catalog",
        help="sizes and monthly prices per region, read from each provider whose credentials are in the environment "
        "(HCLOUD_TOKEN, DIGITALOCEAN_ACCESS_TOKEN, VULTR_API_KEY)",
    )
    catalog.add_argument("--provider", help=f"one of: {', '.join(PROVIDER_NAMES)} (default: every configured one)")
    catalog.add_argument("--region", help=f"one of: {', '.join(REGIONS)} (default: all)")
    catalog.add_argument("--all-plans", action="store_true", help="also the provider's plans none of our sizes uses")
    catalog.add_argument("--json", action="store_true")
    catalog.set_defaults(func=cmd_catalog)


__all__ = ["add_catalog_commands", "catalog_rows", "check_offered", "cmd_catalog", "configured_providers"]
