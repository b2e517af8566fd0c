"""Small pieces every cloud adapter needs, kept in one place so the three adapters stay alike."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace

from activities.cloud.base import VM
from activities.cloud.regions import locations
from activities.cloud.userdata import BRIDGE_PORT, check_size, render_cloud_init
from activities.errors import ProviderRejected
from bridge.config import BootstrapConfig


def vm_user_data(provider: str, bootstrap: BootstrapConfig) -> str:
    """Cloud-init for a VM, refused before any API call when over the provider's limit (it will not shrink)."""
    # On a VM the bridge listens on every interface at the port the health check probes; there is no address file.
    config = replace(bootstrap, listen_host="0.0.0.0", listen_port=BRIDGE_PORT, address_file="")  # noqa: S104
    user_data = render_cloud_init(config)
    check_size(provider, user_data)
    return user_data


def first_location(provider: str, region: str) -> str:
    found = locations(provider, region)
    if not found:
        raise ProviderRejected(f"region: {provider} has no location for {region!r}")
    return found[0].code


def pick(vms: list[VM]) -> VM | None:
    """The agent's VM; should a second one ever exist, a live one wins over a dead one, deterministically."""
    rank = {"running": 0, "creating": 1, "stopped": 2, "gone": 3}
    live = [vm for vm in vms if vm.status != "gone"]
    return min(live, key=lambda vm: (rank[vm.status], vm.vm_id), default=None)


def parse_float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def short(text: str, token: str, limit: int = 160) -> str:
    """A provider message fit for workflow history: one line, bounded, and never the token."""
    text = " ".join(text.split())
    if token:
        text = text.replace(token, "***")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after_s(headers: Mapping[str, str], reset_header: str, cap_s: float) -> float:
    """Seconds until a rate-limited provider takes calls again, from its reset header (a unix time) or Retry-After.

    At least one second, at most `cap_s`: a provider that refills its bucket gradually has budget again well before
    the full reset its header names.
    """
    reset = parse_float(headers.get(reset_header))
    if reset is not None:
        return min(max(reset - time.time(), 1.0), cap_s)
    retry_after = parse_float(headers.get("Retry-After") or headers.get("retry-after"))
    return min(max(retry_after, 1.0), cap_s) if retry_after is not None else 1.0


def numeric_id(vm_id: str, what: str) -> int:
    """A provider's integer VM id from our string form; anything else is refused, never sent."""
    try:
        return int(vm_id)
    except ValueError:
        raise ProviderRejected(f"{vm_id!r} is not {what}") from None
