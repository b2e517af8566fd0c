"""Our five regions mapped to each provider's locations and our three sizes to each provider's plans.

Pure data and pure functions, so workflows may use them to plan placement deterministically. A location is `exact` when
it is in the region's own city or metro; otherwise it is the provider's nearest substitute, which an account that pins
regions for data residency refuses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeGuard, get_args

# The providers a VM can be on: `local` runs each agent as a process on this machine, the others are clouds. A spec
# may also say `auto` (any cloud), which is a choice, not a place: specs keep `str` and are validated against these.
CloudProviderName = Literal["hetzner", "digitalocean", "vultr"]
ProviderName = Literal["local", "hetzner", "digitalocean", "vultr"]

CLOUD_PROVIDERS: tuple[CloudProviderName, ...] = get_args(CloudProviderName)
PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)


def is_provider_name(value: object) -> TypeGuard[ProviderName]:
    """For names from configuration or a payload: narrows `str` to a provider this code knows."""
    return value in PROVIDER_NAMES


@dataclass(frozen=True)
class Location:
    provider: ProviderName
    code: str
    city: str
    exact: bool


def _loc(provider: ProviderName, code: str, city: str, exact: bool) -> Location:
    return Location(provider, code, city, exact)


# Region -> provider -> locations, best first. Cities: us-east Virginia, us-west Oregon, eu-central Frankfurt,
# eu-north Helsinki, ap-southeast Singapore.
LOCATIONS: dict[str, dict[str, tuple[Location, ...]]] = {
    "us-east": {
        "hetzner": (_loc("hetzner", "ash", "Ashburn, VA", True),),
        "digitalocean": (
            _loc("digitalocean", "nyc3", "New York", False),
            _loc("digitalocean", "nyc1", "New York", False),
        ),
        "vultr": (_loc("vultr", "ewr", "New Jersey", False), _loc("vultr", "atl", "Atlanta", False)),
    },
    "us-west": {
        "hetzner": (_loc("hetzner", "hil", "Hillsboro, OR", True),),
        "digitalocean": (_loc("digitalocean", "sfo3", "San Francisco", False),),
        "vultr": (_loc("vultr", "sea", "Seattle", False),),
    },
    "eu-central": {
        # Hetzner has no Frankfurt: Falkenstein and Nuremberg are the nearest.
        "hetzner": (_loc("hetzner", "fsn1", "Falkenstein", False), _loc("hetzner", "nbg1", "Nuremberg", False)),
        "digitalocean": (_loc("digitalocean", "fra1", "Frankfurt", True),),
        "vultr": (_loc("vultr", "fra", "Frankfurt", True),),
    },
    "eu-north": {
        "hetzner": (_loc("hetzner", "hel1", "Helsinki", True),),
        "digitalocean": (_loc("digitalocean", "ams3", "Amsterdam", False),),
        "vultr": (_loc("vultr", "sto", "Stockholm", False),),
    },
    "ap-southeast": {
        "hetzner": (_loc("hetzner", "sin", "Singapore", True),),
        "digitalocean": (_loc("digitalocean", "sgp1", "Singapore", True),),
        "vultr": (_loc("vultr", "sgp", "Singapore", True),),
    },
}

# Size -> provider plan. Hetzner's cpx line is offered in every Hetzner location (cx is EU only).
PLANS: dict[str, dict[str, str]] = {
    "hetzner": {"small": "cpx11", "medium": "cpx21", "large": "cpx31"},
    "digitalocean": {"small": "s-1vcpu-2gb", "medium": "s-2vcpu-4gb", "large": "s-4vcpu-8gb"},
    "vultr": {"small": "vc2-1c-2gb", "medium": "vc2-2c-4gb", "large": "vc2-4c-8gb"},
}

# The OS image each VM boots (Ubuntu 24.04 LTS), in each provider's own naming.
IMAGES: dict[str, str] = {"hetzner": "ubuntu-24.04", "digitalocean": "ubuntu-24-04-x64", "vultr": "2284"}

# Largest user-data each provider accepts, checked before any API call.
USER_DATA_LIMITS: dict[str, int] = {"hetzner": 32 * 1024, "digitalocean": 64 * 1024, "vultr": 64 * 1024}

# The order `provider=auto` tries providers in, unless configured otherwise.
DEFAULT_FAILOVER_ORDER = ("hetzner", "digitalocean", "vultr")


def locations(provider: str, region: str, *, exact_only: bool = False) -> list[Location]:
    """The provider's locations for a region, best first; empty when it cannot serve the region under the rule."""
    found = LOCATIONS.get(region, {}).get(provider, ())
    return [loc for loc in found if loc.exact or not exact_only]


def placements(
    provider: str, region: str, *, exact_only: bool = False, order: tuple[str, ...] = DEFAULT_FAILOVER_ORDER
) -> list[Location]:
    """Every location to try, in order: one provider's, or for `auto` each provider's in the failover order."""
    providers = order if provider == "auto" else (provider,)
    return [loc for name in providers for loc in locations(name, region, exact_only=exact_only)]


def plan(provider: str, size: str) -> str:
    return PLANS[provider][size]
